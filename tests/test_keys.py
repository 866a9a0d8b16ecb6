"""Provider keys checked at load: a key that cannot work is refused, naming the provider
and the reason, never the key; a key file that goes bad keeps the last good key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import ApiKey, ConfigError, parse_spec
from proxy.config.keyformat import key_problem
from proxy.server.runtime import Runtime
from tests.conftest import StartSidecar, openai_client, real_spec, wait_until
from tests.fakes.openai import FakeOpenAI

GOOD_OPENAI = "sk-real-openai-test-0000000000"
ENV = ApiKey(env="X")
ANY = ApiKey(env="X", format="any")


@pytest.mark.parametrize(
    ("kind", "key", "reason"),
    [
        ("openai", "", "empty"),
        ("openai", "sk-proj-abc def-0000000000000", "whitespace"),
        ("openai", "sk-proj-abcdef\n0000000000000", "line break"),
        ("openai", "pk-live-000000000000000000000", "start with 'sk-'"),
        ("openai", "sk-short", "20 to 512 characters; this one has 8"),
        ("anthropic", "sk-proj-0000000000000000000000", "start with 'sk-ant-'"),
        ("gemini", "AIza0000", "39 characters; this one has 8"),
        ("gemini", "sk-0000000000000000000000000000000000000", "start with 'AIza'"),
    ],
)
def test_a_key_that_cannot_work_says_why(kind: str, key: str, reason: str) -> None:
    problem = key_problem(kind, ENV, key)  # type: ignore[arg-type]
    assert problem is not None
    assert reason in problem
    assert not key or key not in problem, "the key itself is never in the message"


def test_well_formed_keys_pass_and_format_any_opts_out() -> None:
    assert key_problem("openai", ENV, GOOD_OPENAI) is None
    assert key_problem("anthropic", ENV, "sk-ant-api03-" + "x" * 40) is None
    assert key_problem("gemini", ENV, "AIza" + "S" * 35) is None
    assert key_problem("openai", ANY, "vllm-local-token") is None, "an OpenAI-compatible server"
    assert "whitespace" in (key_problem("openai", ANY, "two words") or "")


def test_a_bad_key_refuses_the_config_naming_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-not-long")
    spec = parse_spec(real_spec(FakeOpenAI()))
    with pytest.raises(ConfigError) as refused:
        Runtime(spec, "test.yaml", max_body_bytes=1024)
    message = str(refused.value)
    assert "providers[0].apiKey ('openai-primary')" in message
    assert "this one has 11" in message
    assert "sk-not-long" not in message


async def test_a_reload_with_a_bad_key_keeps_the_last_good_config(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-proj-not-anthropic-000000000")
    spec = real_spec(fake_openai) | {"providers": [
        *real_spec(fake_openai)["providers"],
        {"name": "claude", "type": "anthropic", "baseURL": "http://127.0.0.1:9",
         "apiKey": {"env": "TEST_ANTHROPIC_KEY"}},
    ]}  # fmt: skip
    sidecar.runtime.apply(parse_spec(spec), "reload")
    assert sidecar.runtime.snapshot.version == 1, "the last good config keeps serving"
    assert sidecar.runtime.last_error is not None
    assert "('claude'): anthropic keys start with 'sk-ant-'" in sidecar.runtime.last_error
    assert "sk-proj-not-anthropic" not in sidecar.runtime.last_error


def test_the_sidecar_refuses_to_start_with_a_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "rollout.yaml"
    config.write_text(
        "providers:\n"
        "  - {name: gemini-main, type: gemini, baseURL: 'http://127.0.0.1:9',"
        " apiKey: {env: GEMINI_KEY}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "--config", str(config)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "GEMINI_KEY": "AIza-too-short"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "('gemini-main'): gemini keys have 39 characters; this one has 14" in result.stderr
    assert "AIza-too-short" not in result.stderr + result.stdout
    (audited,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert audited["event"] == "config.rejected", "the audit trail goes to stdout by default"


async def test_a_key_file_that_disappears_keeps_the_last_good_key_and_is_reported(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    key_file = tmp_path / "openai-key"
    key_file.write_text(GOOD_OPENAI + "\n")
    spec = real_spec(fake_openai)
    spec["providers"][0]["apiKey"] = {"file": str(key_file)}
    sidecar = await start_sidecar(spec, tmp_path / "unused.yaml", watch_interval=0.05)
    client = openai_client(sidecar)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    await client.chat.completions.create(**ask)  # type: ignore[call-overload]
    key_file.unlink()
    problems = sidecar.runtime.metrics.key_problems.labels("openai-primary")
    await wait_until(lambda: problems._value.get() == 1)
    completion = await client.chat.completions.create(**ask)  # type: ignore[call-overload]
    assert completion.choices[0].message.content == "Real OpenAI answer.", "last good key"
    key_file.write_text("not a key\n")  # a bad rotation: still the last good key
    await wait_until(lambda: problems._value.get() == 2)
    await client.chat.completions.create(**ask)  # type: ignore[call-overload]
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {GOOD_OPENAI}"
