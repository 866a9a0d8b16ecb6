"""Config: errors that name every bad field, and live reload that never loses the good config."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import pytest

from proxy.config import ConfigError, load_file, load_text
from tests.conftest import StartSidecar, openai_client, real_spec, wait_until
from tests.fakes.openai import FakeOpenAI

BAD = """
providers:
  - {name: oa, type: openx, baseURL: ftp://x, apiKey: {env: K, file: /k}}
traffic: {realWeight: 150, stikyKey: {header: x}}
strategy: {steps: [{setWeight: 5, pause: {}}, {pause: {duration: 10x}}]}
"""


def test_a_bad_file_names_every_bad_field_and_why() -> None:
    with pytest.raises(ConfigError) as raised:
        load_text(BAD, "rollout.yaml")
    text = str(raised.value)
    assert text.startswith("invalid config rollout.yaml:")
    for expected in (
        "providers[0].type: Input should be 'openai', 'anthropic', 'gemini' or 'azure-openai'",
        "providers[0].baseURL: String should match pattern '^https?://'",
        "providers[0].apiKey: set exactly one of env, file or secretRef",
        "traffic.realWeight: Input should be less than or equal to 100",
        "traffic.stikyKey: unknown field",
        "strategy.steps[0]: a step is exactly one of setWeight, setShadow or pause",
        "strategy.steps[1].pause.duration: '10x' is not a duration",
    ):
        assert expected in text


def test_cross_field_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="fallback names unknown provider"):
        load_text("providers: [{name: a, type: openai, baseURL: 'http://x'}]\nfallback: [b, mock]")
    with pytest.raises(ConfigError, match="repeated: a"):
        load_text(
            "providers: [{name: a, type: openai, baseURL: 'http://x'},"
            " {name: a, type: anthropic, baseURL: 'http://y'}]"
        )


def test_whole_document_or_spec_only(tmp_path: Path) -> None:
    whole = tmp_path / "whole.yaml"
    whole.write_text("apiVersion: llm-rollout.io/v1alpha1\nkind: LLMRollout\n"
                     "metadata: {name: x}\nspec: {traffic: {realWeight: 5}}\n")  # fmt: skip
    assert load_file(whole).traffic.real_weight == 5
    assert load_text("traffic: {realWeight: 7}").traffic.real_weight == 7
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_text("traffic: [")
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")


async def test_live_reload_applies_valid_and_refuses_invalid(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    import yaml

    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(real_spec(fake_openai, weight=0)))
    sidecar = await start_sidecar(load_file(path), path, watch_interval=0.05)
    client = openai_client(sidecar)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    raw = await client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    assert raw.headers["x-llm-backend"] == "mock"

    path.write_text(yaml.safe_dump(real_spec(fake_openai, weight=100)))
    await wait_until(lambda: sidecar.runtime.snapshot.version == 2)
    raw = await client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    assert raw.headers["x-llm-backend"] == "openai-primary"

    path.write_text("traffic: {realWeight: 101}\n")
    reloads = sidecar.runtime.metrics.config_reloads
    await wait_until(lambda: reloads.labels("rejected")._value.get() == 1)
    assert sidecar.runtime.snapshot.version == 2, "the last good config keeps serving"
    raw = await client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    assert raw.headers["x-llm-backend"] == "openai-primary"
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{sidecar.admin_port}/config"
        async with http.get(url) as response:
            shown = await response.json()
    assert "traffic.realWeight" in shown["lastRejected"]
    assert shown["version"] == 2


async def test_reload_does_not_disturb_requests_in_flight(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    path = tmp_path / "rollout.yaml"
    slow = "mock: {seed: 1, latency: {firstTokenMs: {p50: 300, p95: 300}}}\n"
    path.write_text(slow)
    sidecar = await start_sidecar(load_file(path), path, watch_interval=0.05)
    client = openai_client(sidecar)

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    tasks = [asyncio.create_task(one(i)) for i in range(20)]
    await asyncio.sleep(0.1)
    path.write_text("mock: {seed: 2}\n")
    results = await asyncio.gather(*tasks)
    assert all(results), "every in-flight request completed across the reload"
    assert sidecar.runtime.snapshot.version == 2


async def test_rotated_key_file_takes_effect_without_restart(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    key_file = tmp_path / "openai-key"
    key_file.write_text("sk-old-openai-test-0000000000000\n")
    spec = real_spec(fake_openai)
    spec["providers"][0]["apiKey"] = {"file": str(key_file)}
    sidecar = await start_sidecar(spec, tmp_path / "unused.yaml", watch_interval=0.05)
    client = openai_client(sidecar)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(**ask)  # type: ignore[call-overload]
    key_file.write_text("sk-real-openai-test-0000000000\n")
    await wait_until(lambda: sidecar.runtime.keys.get(sidecar.runtime.snapshot.spec.providers[0]
                                                    .api_key) == "sk-real-openai-test-0000000000")  # type: ignore[arg-type]  # fmt: skip
    completion = await client.chat.completions.create(**ask)  # type: ignore[call-overload]
    assert completion.choices[0].message.content == "Real OpenAI answer."
