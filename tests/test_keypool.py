"""Key pools: requests spread over healthy keys; a rejected key is skipped and the call
retried on another (zero failed requests); a 429 rests that key, not the provider;
rotation is add-then-remove with no failed request."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from proxy.config import parse_spec
from proxy.config.audit import AuditLog, fingerprint
from tests.conftest import StartSidecar, openai_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI
from tests.test_admin import get

GOOD = "sk-real-openai-test-0000000000"  # what the fake provider accepts
REVOKED = "sk-revoked-openai-test-00000000"
SECOND = "sk-second-openai-test-000000000"
ASK = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def pool_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_REVOKED", REVOKED)
    monkeypatch.setenv("KEY_SECOND", SECOND)


def pooled(fake: FakeOpenAI, *envs: str, **extra: Any) -> dict[str, Any]:
    spec = real_spec(fake, retry={"maxAttempts": 1}, **extra)
    del spec["providers"][0]["apiKey"]
    spec["providers"][0]["apiKeys"] = [{"env": env} for env in envs]
    return spec


def used_keys(fake: FakeOpenAI) -> list[str]:
    return [r.headers["Authorization"].removeprefix("Bearer ") for r in fake.requests]


async def test_a_provider_rejecting_one_of_two_keys_fails_no_request(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    audit = io.StringIO()
    sidecar = await start_sidecar(
        pooled(fake_openai, "KEY_REVOKED", "TEST_OPENAI_KEY"), audit=AuditLog(audit, "sidecar")
    )
    client = openai_client(sidecar)
    for _ in range(8):
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == "Real OpenAI answer."
    assert used_keys(fake_openai).count(REVOKED) == 1, "tried once, then skipped"
    revoked = fingerprint("openai-primary", REVOKED)
    metrics = (await get(sidecar.admin_port, "/metrics"))[1]
    assert f'llm_rollout_key_state{{key="{revoked}",provider="openai-primary"}} 1.0' in metrics
    good = fingerprint("openai-primary", GOOD)
    assert f'llm_rollout_key_state{{key="{good}",provider="openai-primary"}} 0.0' in metrics
    health = json.loads((await get(sidecar.admin_port, "/health/llm"))[1])
    assert health["keys"]["openai-primary"] == {revoked: "rejected", good: "ok"}
    events = [json.loads(line) for line in audit.getvalue().splitlines()]
    assert [e["key"] for e in events if e["event"] == "key.rejected"] == [revoked], "once"
    for text in (metrics, json.dumps(health), audit.getvalue()):
        assert REVOKED not in text
        assert GOOD not in text


async def test_requests_spread_over_healthy_keys_and_a_429_rests_only_that_key(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.also_accepted = {SECOND}
    sidecar = await start_sidecar(pooled(fake_openai, "TEST_OPENAI_KEY", "KEY_SECOND"))
    client = openai_client(sidecar)
    for _ in range(4):
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert set(used_keys(fake_openai)) == {GOOD, SECOND}, "both keys carry traffic"
    fake_openai.requests.clear()
    fake_openai.faults.append(Fault(status=429, headers={"retry-after": "30"}))
    for _ in range(4):
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == "Real OpenAI answer."
    rested = used_keys(fake_openai)[0]
    assert used_keys(fake_openai)[1:] == [k for k in (GOOD, SECOND) if k != rested] * 4, (
        "the call is retried on the other key, which takes the traffic while the first rests"
    )
    health = json.loads((await get(sidecar.admin_port, "/health/llm"))[1])
    assert health["keys"]["openai-primary"][fingerprint("openai-primary", rested)] == "resting"
    assert health["providers"][0]["breaker"] == "closed", "the provider is not blamed"


async def test_rotation_add_then_remove_fails_no_request(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.key = REVOKED  # the provider accepts the old key ...
    audit = io.StringIO()
    sidecar = await start_sidecar(
        pooled(fake_openai, "KEY_REVOKED"), audit=AuditLog(audit, "sidecar")
    )
    client = openai_client(sidecar)
    stop = asyncio.Event()
    failures: list[Exception] = []
    answered = 0

    async def traffic() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
                answered += 1
            except Exception as error:  # any failure is what the test counts
                failures.append(error)

    task = asyncio.create_task(traffic())
    await asyncio.sleep(0.2)
    fake_openai.also_accepted = {SECOND}  # ... the new key is issued
    sidecar.runtime.apply(parse_spec(pooled(fake_openai, "KEY_REVOKED", "KEY_SECOND")), "add")
    await asyncio.sleep(0.2)
    sidecar.runtime.apply(parse_spec(pooled(fake_openai, "KEY_SECOND")), "remove")
    await asyncio.sleep(0.1)
    fake_openai.key = GOOD  # the old key is revoked at the provider
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert failures == [], failures[:1]
    assert answered > 10
    assert used_keys(fake_openai)[-1] == SECOND
    events = [(e["event"], e.get("key")) for e in map(json.loads, audit.getvalue().splitlines())]
    assert ("key.loaded", fingerprint("openai-primary", SECOND)) in events
    assert ("key.removed", fingerprint("openai-primary", REVOKED)) in events
