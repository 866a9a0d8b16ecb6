"""Resilience features a user sees through the SDKs and the admin port."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import openai
import pytest

from proxy.config import parse_spec
from tests.conftest import StartSidecar, anthropic_client, openai_client, real_spec
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI
from tests.test_admin import get
from tests.test_budget_sidecar import FAKE_COST

ASK = [{"role": "user", "content": "Hello"}]
TENANTS = {"tenants": {"header": "x-tenant-id", "default": {"requestsPerMinute": 2},
                       "overrides": {"big": {"requestsPerMinute": 100}}}}  # fmt: skip
#: Opens on the first failure, stays open for a minute: the test decides when it recovers.
TOUCHY = {"circuitBreaker": {"minRequests": 1, "openSeconds": 60, "halfOpenProbes": 1},
          "retry": {"maxAttempts": 1}}  # fmt: skip


async def test_tenant_over_quota_gets_a_429_in_its_dialect(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar({"traffic": {"realWeight": 0}} | TENANTS)
    client = openai_client(sidecar)
    a = {"x-tenant-id": "shop-a"}
    for _ in range(2):
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers=a)
    with pytest.raises(openai.RateLimitError) as raised:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers=a)
    headers = raised.value.response.headers
    assert headers["retry-after"] == "30", "2 a minute: the next fits in 30 s"
    assert headers["x-llm-route-reason"] == "tenant-quota"
    assert "shop-a" in str(raised.value)
    assert "2 requests per minute" in str(raised.value)
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, extra_headers={"x-tenant-id": "shop-b"}
    )  # another tenant is unaffected
    for _ in range(5):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, extra_headers={"x-tenant-id": "big"}
        )  # an override raises the quota
    claude = anthropic_client(sidecar)
    with pytest.raises(anthropic.RateLimitError) as refused:
        await claude.messages.create(
            model="claude-sonnet-5", max_tokens=16, messages=ASK, extra_headers=a
        )
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_open_breaker_is_skipped_and_shows_in_health_metrics_and_config(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai) | TOUCHY)
    client = openai_client(sidecar)
    assert (await get(sidecar.admin_port, "/health/llm"))[0] == 200
    fake_openai.faults.append(Fault(status=500))
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)

    with pytest.raises(openai.APIStatusError) as raised:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert raised.value.status_code == 503
    headers = raised.value.response.headers
    assert headers["x-llm-route-reason"] == "breaker-open:openai-primary"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert len(fake_openai.requests) == 1, "an open breaker means no call at all"

    status, text = await get(sidecar.admin_port, "/health/llm")
    assert status == 503, "no provider usable and the mock is not in the chain"
    health = json.loads(text)
    assert health["providers"][0]["breaker"] == "open"
    assert health["mock"]["usable"] is False
    _, metrics = await get(sidecar.admin_port, "/metrics")
    assert 'llm_rollout_breaker_state{provider="openai-primary"} 1.0' in metrics
    assert 'llm_rollout_breaker_transitions_total{provider="openai-primary",to="open"} 1.0' in (
        metrics
    )
    assert 'llm_rollout_upstream_attempts_total{outcome="500",provider="openai-primary"} 1.0' in (
        metrics
    )
    _, config = await get(sidecar.admin_port, "/config")
    block = json.loads(config)["providers"][0]
    assert block["name"] == "openai-primary"
    assert block["breaker"] == "open"
    assert block["timesOpened"] == 1

    # A config reload that leaves the provider alone keeps its breaker open.
    sidecar.runtime.apply(parse_spec(real_spec(fake_openai, weight=90) | TOUCHY), "test")
    assert (
        json.loads((await get(sidecar.admin_port, "/config"))[1])["providers"][0]["breaker"]
        == "open"
    )
    # With the mock at the end of the chain the sidecar is healthy again, and answers.
    sidecar.runtime.apply(
        parse_spec(real_spec(fake_openai) | TOUCHY | {"fallback": ["openai-primary", "mock"]}),
        "test",
    )
    assert (await get(sidecar.admin_port, "/health/llm"))[0] == 200
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-backend"] == "mock"
    assert raw.headers["x-llm-route-reason"] == "breaker-open:openai-primary"


async def test_retried_answers_tell_the_sdk_not_to_retry(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(fake_openai) | {"retry": {"maxAttempts": 2, "initialBackoffMs": 1}}
    client = openai_client(await start_sidecar(spec))
    fake_openai.faults.append(Fault(status=503, headers={"x-should-retry": "true"}))
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.parse().choices[0].message.content == "Real OpenAI answer."
    assert raw.headers["x-llm-route-reason"] == "weight", "same provider: no fallback"
    fake_openai.faults.extend(
        Fault(status=503, headers={"x-should-retry": "true"}) for _ in range(2)
    )
    with pytest.raises(openai.InternalServerError) as raised:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert raised.value.response.headers.get_list("x-should-retry") == ["false"], (
        "the provider's 'true' is replaced: the sidecar already retried"
    )
    assert len(fake_openai.requests) == 4


async def test_stall_mid_stream_in_anthropic_ends_with_event_error(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    spec = real_spec(anthropic_fake=fake_anthropic)
    spec["providers"][0]["timeouts"] = {"firstByteMs": 200}
    sidecar = await start_sidecar(spec)
    fake_anthropic.faults.append(Fault(stall_after_chunks=4, stall_seconds=1.0))
    with pytest.raises(anthropic.APIStatusError, match="stalled before completion"):
        async with anthropic_client(sidecar).messages.stream(
            model="claude-sonnet-5", max_tokens=64, messages=ASK
        ) as stream:
            async for _ in stream.text_stream:
                pass
    stalls = sidecar.runtime.metrics.stream_errors.labels(
        "anthropic.messages", "anthropic-primary", "stalled"
    )
    assert stalls._value.get() == 1
    window = sidecar.runtime.resilience.get("anthropic-primary").breaker.window(
        sidecar.runtime.clock()
    )
    assert window == (0, 1), "the stalled stream counts against the provider's breaker"


async def test_one_budget_hold_covers_the_whole_chain(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    """Retries and fallbacks settle once: billed answers at cost, refusals and mock at 0,
    and an attempt that timed out after sending (it may have run) at the whole hold."""
    spec = real_spec(fake_openai, budget={"dailyUSD": "10"}) | {
        "retry": {"maxAttempts": 2, "initialBackoffMs": 1},
        "fallback": ["openai-primary", "mock"],
    }
    spec["providers"][0]["timeouts"] = {"firstByteMs": 200}
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)

    def spent() -> Decimal:
        return {s.key: s for s in sidecar.runtime.budget.ledger.states()}["rollout/daily"].spent

    fake_openai.faults.append(Fault(status=503))  # refused, then answered: billed once
    await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=20)
    assert spent() == FAKE_COST
    fake_openai.faults.extend([Fault(status=503), Fault(status=503)])  # → mock: nothing billed
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, max_tokens=20
    )
    assert raw.headers["x-llm-backend"] == "mock"
    assert spent() == FAKE_COST
    fake_openai.faults.append(Fault(first_byte_delay=0.5))  # timed out: may have run
    await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=20)
    assert spent() > 2 * FAKE_COST, "the hold (worst case), not the second call's cost"
    assert all(s.reserved == 0 for s in sidecar.runtime.budget.ledger.states())


@pytest.mark.parametrize(
    "fault",
    [Fault(cut_after_chunks=0), Fault(stall_after_chunks=0, stall_seconds=1.0)],
    ids=["cut", "stalled"],
)
async def test_a_stream_that_dies_before_its_first_byte_is_retried(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fault: Fault
) -> None:
    spec = real_spec(fake_openai) | {"retry": {"maxAttempts": 2, "initialBackoffMs": 1}}
    spec["providers"][0]["timeouts"] = {"firstByteMs": 200}
    client = openai_client(await start_sidecar(spec))
    fake_openai.faults.append(fault)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "Real OpenAI answer.", "nothing had been relayed: the sidecar retried"
    assert len(fake_openai.requests) == 2
    assert raw.headers["x-should-retry"] == "false"


class ManualClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_429_answer_to_a_half_open_probe_does_not_close_the_breaker(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    clock = ManualClock()
    spec = real_spec(fake_openai) | TOUCHY | {"fallback": ["openai-primary", "mock"]}
    sidecar = await start_sidecar(spec, clock=clock)
    client = openai_client(sidecar)
    breaker = sidecar.runtime.resilience.get("openai-primary").breaker

    fake_openai.faults.append(Fault(status=503))
    await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert breaker.state(clock()).label == "open"
    clock.now += 61  # openSeconds passed, without waiting a minute
    assert breaker.state(clock()).label == "half-open"

    fake_openai.faults.append(Fault(status=429, headers={"retry-after": "0"}))
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-backend"] == "mock", "the probe's 429 fell back to the mock"
    assert breaker.state(clock()).label == "half-open", "a quota answer says nothing of health"
    assert breaker.would_allow(clock()), "and the probe slot is free for the next request"

    clock.now += 2  # past the 429's pause
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-backend"] == "openai-primary"
    assert breaker.state(clock()).label == "closed", "a real answer to the probe closes it"
