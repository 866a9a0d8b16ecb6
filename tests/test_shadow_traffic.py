"""Shadow traffic through a running sidecar with the official SDKs and the fake providers.

With `traffic.shadow.percent: 100` and `realWeight: 0`, every client answer must be the
mock's, byte for byte, while the real provider receives a copy of every request, whose
spend is held and charged by the budget and whose outcome lands in the real arm's window.
"""

from __future__ import annotations

import asyncio
import random
import sys
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from google.genai import types as genai_types

from proxy import tokens
from proxy.budget import PriceBook
from proxy.config import LLMRolloutSpec, parse_spec
from proxy.routing import Decision, decide, shadow_target
from proxy.server.serve import Sidecar
from tests.conftest import (
    NO_RETRY,
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
    real_spec,
    wait_until,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Write a tagline for a bakery"}]
REQUEST_ID = {"x-request-id": "shadow-test-request"}


def shadowed(
    *fakes: Any, percent: int = 100, shadow: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """`real_spec` with realWeight 0 and `traffic.shadow` at `percent` (plus `shadow`)."""
    spec = real_spec(*fakes, weight=0, **extra)
    spec["traffic"]["shadow"] = {"percent": percent} | (shadow or {})
    return spec


def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    return sidecar.runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def copies(sidecar: Sidecar, provider: str, result: str) -> float:
    return metric(sidecar, "llm_rollout_shadow_requests_total", provider=provider, result=result)


def client_requests(sidecar: Sidecar) -> dict[str, float]:
    """`llm_rollout_requests_total` summed by arm."""
    arms: dict[str, float] = {}
    for family in sidecar.runtime.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "llm_rollout_requests_total":
                arm = sample.labels["arm"]
                arms[arm] = arms.get(arm, 0.0) + sample.value
    return arms


async def every_dialect(sidecar: Sidecar) -> list[Any]:
    """One plain and one streamed request in each dialect: what the client received."""
    oa, an, ge = openai_client(sidecar), anthropic_client(sidecar), gemini_client(sidecar)
    seen: list[Any] = []
    chat = oa.chat.completions
    raw = await chat.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
        extra_headers=REQUEST_ID,  # type: ignore[arg-type]
    )
    seen.append((dict(raw.headers).get("x-llm-backend"), raw.content))
    async with chat.with_streaming_response.create(
        model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}, extra_headers=REQUEST_ID,
    ) as streamed:  # fmt: skip
        seen.append((streamed.headers.get("x-llm-backend"), await streamed.read()))
    raw_r = await oa.responses.with_raw_response.create(
        model="gpt-4o-mini", input="Write a tagline for a bakery", extra_headers=REQUEST_ID
    )
    seen.append((raw_r.headers.get("x-llm-backend"), raw_r.content))
    async with oa.responses.with_streaming_response.create(
        model="gpt-4o-mini", input="Stream a tagline", stream=True, extra_headers=REQUEST_ID
    ) as streamed_r:
        seen.append((streamed_r.headers.get("x-llm-backend"), await streamed_r.read()))
    raw_a = await an.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=200, messages=ASK,  # type: ignore[arg-type]
        extra_headers=REQUEST_ID,
    )  # fmt: skip
    seen.append((raw_a.headers.get("x-llm-backend"), await raw_a.read()))
    async with an.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=200, messages=ASK,  # type: ignore[arg-type]
        stream=True, extra_headers=REQUEST_ID,
    ) as streamed_a:  # fmt: skip
        seen.append((streamed_a.headers.get("x-llm-backend"), await streamed_a.read()))
    # google-genai has no raw-bytes API: compare what it parsed, every field of it.
    config = genai_types.GenerateContentConfig(http_options={"headers": REQUEST_ID})
    answer = await ge.aio.models.generate_content(
        model="gemini-2.5-flash", contents="Write a tagline for a bakery", config=config
    )
    assert answer.sdk_http_response is not None
    assert answer.sdk_http_response.headers
    seen.append((answer.sdk_http_response.headers.get("x-llm-backend"),
                 answer.model_dump(exclude={"sdk_http_response"})))  # fmt: skip
    chunks = [
        chunk.model_dump(exclude={"sdk_http_response"})
        async for chunk in await ge.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Stream a tagline", config=config
        )
    ]
    seen.append(("mock" if chunks else None, chunks))
    return seen


async def test_shadow_at_100_percent_leaves_every_answer_the_mocks_and_copies_every_request(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    fake_gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = SimpleNamespace(time=lambda: 1_800_000_000.0)  # the mock's `created` field
    monkeypatch.setattr(sys.modules["proxy.mock.answer"], "time", frozen)
    fakes = (fake_openai, fake_anthropic)
    plain = await start_sidecar(real_spec(*fakes, weight=0, gemini_fake=fake_gemini))
    shadow = await start_sidecar(shadowed(*fakes, gemini_fake=fake_gemini))

    without = await every_dialect(plain)
    assert not fake_openai.requests
    assert not fake_anthropic.requests
    assert not fake_gemini.requests
    with_shadow = await every_dialect(shadow)

    assert [backend for backend, _ in with_shadow] == ["mock"] * 8
    for index, (before, after) in enumerate(zip(without, with_shadow, strict=True)):
        assert before == after, f"answer {index} changed with shadow traffic on"
    await wait_until(
        lambda: (
            (len(fake_openai.requests), len(fake_anthropic.requests), len(fake_gemini.requests))
            == (4, 2, 2)
        )
    )
    assert {r.path for r in fake_openai.requests} == {"/v1/chat/completions", "/v1/responses"}
    assert sum(r.json.get("stream") is True for r in fake_openai.requests) == 2
    assert all(r.headers["Authorization"] == "Bearer sk-real-openai"
               for r in fake_openai.requests)  # fmt: skip
    for provider, count in (("openai-primary", 4), ("anthropic-primary", 2),
                            ("gemini-primary", 2)):  # fmt: skip
        await wait_until(lambda p=provider, n=count: copies(shadow, p, "sent") == n)  # type: ignore[misc]
    window = shadow.runtime.stats.drain()
    assert window["mock"].requests == 8
    assert window["mock"].shadow_requests == 0
    assert window["real"].requests == 8
    assert window["real"].shadow_requests == 8
    assert window["real"].errors == 0
    assert window["real"].cost_usd > 0
    assert client_requests(shadow) == {"mock": 8}, "a copy is not a client's request"
    spent = metric(shadow, "llm_rollout_cost_usd_total", provider="openai-primary",
                   model="gpt-4o-mini", tenant="none", arm="real", shadow="true")  # fmt: skip
    assert spent > 0


async def test_shadow_spend_is_held_by_the_budget_and_never_passes_its_cap(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = shadowed(fake_openai, budget={"dailyUSD": "0.0002"}, shadow={"maxConcurrent": 200})
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)
    rng = random.Random(7)
    asks = [([{"role": "user", "content": "word " * rng.randint(1, 200)}], rng.randint(50, 400))
            for _ in range(120)]  # fmt: skip

    async def call(messages: list[dict[str, str]], most: int) -> str | None:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=messages,
            max_tokens=most,  # type: ignore[arg-type]
        )
        return raw.headers.get("x-llm-backend")

    backends = await asyncio.gather(*(call(m, n) for m, n in asks))
    assert set(backends) == {"mock"}
    worst = [worst_case(sidecar, m, n) for m, n in asks]
    assert sum(worst) > 3 * Decimal("0.0002"), "the test must ask for more than the cap"

    def done() -> float:
        return sum(copies(sidecar, "openai-primary", r) for r in ("sent", "refused", "failed"))

    await wait_until(lambda: done() == 120)
    sent, refused = (
        copies(sidecar, "openai-primary", "sent"),
        copies(sidecar, "openai-primary", "refused"),
    )
    assert sent > 0
    assert refused > 0
    assert len(fake_openai.requests) == sent, "a refused copy is never sent"
    daily = {s.key: s for s in sidecar.runtime.budget.ledger.states()}["rollout/daily"]
    assert daily.reserved == 0
    assert 0 < daily.spent <= Decimal("0.0002")
    assert metric(sidecar, "llm_rollout_budget_refusals_total", budget="rollout/daily") == refused
    assert client_requests(sidecar) == {"mock": 120}
    assert sidecar.runtime.stats.drain()["real"].shadow_requests == sent


def worst_case(sidecar: Sidecar, messages: list[dict[str, str]], most: int) -> Decimal:
    spec = sidecar.runtime.snapshot.spec
    payload = {"model": "gpt-4o-mini", "messages": messages}
    counted = tokens.reservation_tokens("openai.chat", payload, "gpt-4o-mini")
    return PriceBook(spec.providers).worst_case(spec.providers[0], "gpt-4o-mini", counted, most)


async def test_copies_beyond_max_concurrent_are_skipped_and_shutdown_cancels_the_rest(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.faults.extend(Fault(first_byte_delay=4) for _ in range(6))  # copies hang
    spec = shadowed(fake_openai, budget={"dailyUSD": "5"}, shadow={"maxConcurrent": 2},
                    **NO_RETRY)  # fmt: skip
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)
    for _ in range(6):
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    await wait_until(lambda: len(fake_openai.requests) == 2)
    assert copies(sidecar, "openai-primary", "sent") == 0, (
        "every client answer came while the copies still hung: the client never waits"
    )
    assert copies(sidecar, "openai-primary", "skipped") == 4
    daily = {s.key: s for s in sidecar.runtime.budget.ledger.states()}["rollout/daily"]
    assert daily.reserved > 0, "two copies in flight hold their worst case"
    began = asyncio.get_running_loop().time()
    await sidecar.stop()
    assert asyncio.get_running_loop().time() - began < 3, "shutdown does not wait for copies"
    assert daily.reserved == 0, "a cancelled copy's hold is settled"
    assert daily.spent > 0, "a cancelled copy may have run: it is charged its hold"
    assert copies(sidecar, "openai-primary", "sent") == 0


async def test_a_failing_copy_counts_against_the_real_arm_and_never_reaches_the_client(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.faults.extend(Fault(status=500) for _ in range(3))
    sidecar = await start_sidecar(shadowed(None, fake_anthropic, **NO_RETRY))
    client = anthropic_client(sidecar)
    for _ in range(3):
        raw = await client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=ASK,  # type: ignore[arg-type]
        )
        assert raw.status_code == 200
        assert raw.headers["x-llm-backend"] == "mock"
    await wait_until(lambda: copies(sidecar, "anthropic-primary", "failed") == 3)
    assert copies(sidecar, "anthropic-primary", "sent") == 0
    real = sidecar.runtime.stats.drain()["real"]
    assert real.requests == 3
    assert real.errors == 3, "the real arm's window shows the provider failing"
    assert real.shadow_requests == 3
    assert metric(sidecar, "llm_rollout_upstream_attempts_total",
                  provider="anthropic-primary", outcome="500") == 3  # fmt: skip


def spec_of(shadow: int | None, **traffic: Any) -> LLMRolloutSpec:
    providers = [{"name": "oa", "type": "openai", "baseURL": "http://127.0.0.1:1/v1"}]
    body: dict[str, Any] = {"providers": providers, "traffic": {"realWeight": 0} | traffic}
    if shadow is not None:
        body["traffic"]["shadow"] = {"percent": shadow}
    return parse_spec(body)


def test_only_requests_the_weight_sent_to_the_mock_are_copied() -> None:
    spec = spec_of(100)
    oa = spec.providers[0]
    assert shadow_target(spec, "openai", decide(spec, "openai", sticky_value=None, draw=0.5),
                         0.99) == oa  # fmt: skip
    assert shadow_target(spec, "anthropic", Decision(None, "weight"), 0.0) is None, (
        "no provider of the dialect: nothing to copy to"
    )
    for reason in ("force-mock", "budget", "no-provider"):
        assert shadow_target(spec, "openai", Decision(None, reason), 0.0) is None  # type: ignore[arg-type]
    assert shadow_target(spec, "openai", Decision(oa, "weight"), 0.0) is None, "routed real"
    assert shadow_target(spec_of(None), "openai", Decision(None, "weight"), 0.0) is None
    ten = spec_of(10)
    draws = [i / 1000 for i in range(1000)]
    assert sum(shadow_target(ten, "openai", Decision(None, "sticky"), d) is not None
               for d in draws) == 100  # fmt: skip
