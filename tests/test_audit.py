"""The audit trail, and no key or prompt in any log line, span, metric, audit event or
error body."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from proxy.config import parse_spec
from proxy.config.audit import AuditLog, fingerprint
from tests.conftest import StartSidecar, openai_client, real_spec, wait_until
from tests.fakes.openai import FakeOpenAI
from tests.otlp import OTLPReceiver
from tests.test_admin import get

OLD = "sk-audit-old-key-000000000000wxyz"
NEW = "sk-audit-new-key-000000000000abcd"
PROMPT = "my secret prompt about the merger"


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_keys_configs_and_the_kill_switch_are_audited_without_the_keys(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    stream = io.StringIO()
    key_file = tmp_path / "key"
    key_file.write_text(OLD)
    spec = real_spec(fake_openai)
    spec["providers"][0]["apiKey"] = {"file": str(key_file)}
    sidecar = await start_sidecar(
        spec, tmp_path / "unused.yaml", watch_interval=0.05,
        audit=AuditLog(stream, "sidecar"),
    )  # fmt: skip
    runtime = sidecar.runtime
    loaded = events(stream)
    assert [e["event"] for e in loaded] == ["key.loaded", "config.applied"]
    assert loaded[0]["key"] == fingerprint("openai-primary", OLD)
    assert loaded[0]["key"].startswith("openai-primary:…wxyz:sha256=")
    runtime.keys.get(runtime.snapshot.spec.providers[0].api_key)  # type: ignore[arg-type]
    key_file.write_text(NEW)  # kubelet swaps the mounted Secret
    await wait_until(lambda: any(e["event"] == "key.rotated" for e in events(stream)))
    rotated = next(e for e in events(stream) if e["event"] == "key.rotated")
    assert (rotated["old"], rotated["new"]) == (
        fingerprint("openai-primary", OLD),
        fingerprint("openai-primary", NEW),
    )
    runtime.apply(parse_spec(spec | {"forceMock": True}), "edit")
    runtime.apply(parse_spec(spec), "edit")
    bad = real_spec(fake_openai)
    bad["providers"][0]["apiKey"] = {"env": "NO_SUCH_FORMAT"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_SUCH_FORMAT", "sk-x")
        runtime.apply(parse_spec(bad), "bad-edit")
    names = [e["event"] for e in events(stream)]
    assert names[-5:] == ["config.applied", "killswitch.on", "config.applied", "killswitch.off",
                          "config.rejected"]  # fmt: skip
    rejected = events(stream)[-1]
    assert rejected["source"] == "bad-edit"
    assert "providers[0].apiKey ('openai-primary')" in rejected["problems"][0]
    assert all(e["component"] == "sidecar" and e["audit"] is True for e in events(stream))
    text = stream.getvalue()
    for secret in (OLD, NEW, 'sk-x"'):
        assert secret not in text
    metric = runtime.metrics.audit_events.labels("config.applied")
    assert metric._value.get() == 3, "llm_rollout_audit_events_total counts what was written"


async def test_no_key_or_prompt_in_logs_spans_metrics_audit_or_error_bodies(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = await OTLPReceiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    stream = io.StringIO()
    key = "sk-real-openai-test-0000000000"
    try:
        spec = real_spec(fake_openai) | {"retry": {"maxAttempts": 1}}
        sidecar = await start_sidecar(spec, audit=AuditLog(stream, "sidecar"))
        client = openai_client(sidecar)
        ask = [{"role": "user", "content": PROMPT}]
        await client.chat.completions.create(model="gpt-4o-mini", messages=ask)  # type: ignore[arg-type]
        stream_answer = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=ask,
            stream=True,  # type: ignore[arg-type]
        )
        _ = [chunk async for chunk in stream_answer]
        fake_openai.key = "sk-another-key-the-provider-wants"  # the provider rejects ours
        with pytest.raises(openai.AuthenticationError) as rejected:
            await client.chat.completions.create(model="gpt-4o-mini", messages=ask)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as malformed:
            await client.chat.completions.create(model="gpt-4o-mini", messages="oops")  # type: ignore[arg-type]
        metrics = (await get(sidecar.admin_port, "/metrics"))[1]
        health = json.loads((await get(sidecar.admin_port, "/health/llm"))[1])
        config = (await get(sidecar.admin_port, "/config"))[1]
        assert sidecar.runtime.tracing is not None
        await asyncio.to_thread(sidecar.runtime.tracing.flush)
    finally:
        await receiver.stop()
    assert receiver.spans, "spans were exported"
    (refused,) = [e for e in events(stream) if e["event"] == "key.rejected"]
    assert refused["key"] == fingerprint("openai-primary", key), "which key to rotate"
    assert (
        f'llm_rollout_key_rejections_total{{key="{refused["key"]}",provider="openai-primary"}} 1.0'
        in metrics
    )
    state = f'llm_rollout_key_state{{key="{refused["key"]}",provider="openai-primary"}} 1.0'
    assert state in metrics, "the key is reported rejected"
    assert health["keys"] == {"openai-primary": {refused["key"]: "rejected"}}, "/health/llm"
    seen = {
        "log lines": caplog.text,
        "spans": repr(receiver.spans),
        "metrics": metrics,
        "/config": config,
        "/health/llm": json.dumps(health),
        "audit log": stream.getvalue(),
        "error bodies": repr(rejected.value.body) + repr(malformed.value.body),
    }
    for where, text in seen.items():
        assert key not in text, f"the provider key is in the {where}"
        assert key[-12:] not in text, f"part of the provider key is in the {where}"
        assert PROMPT not in text, f"the prompt is in the {where}"
