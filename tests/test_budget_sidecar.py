"""Budgets through a running sidecar with the official SDKs: caps hold under concurrency,
streams settle, the ledger file survives restarts and refuses to read a corrupt file as zero."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from google.genai import types as genai_types

from proxy import tokens
from proxy.budget import PriceBook
from proxy.cli import parse_args
from proxy.config import parse_spec
from proxy.server.serve import Sidecar
from tests.conftest import (
    NO_RETRY,
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
    real_spec,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Hello"}]
#: gpt-4o-mini's published prices per million tokens, and the fake's fixed usage (11 in, 4 out).
IN, OUT = Decimal("0.15"), Decimal("0.60")
FAKE_COST = (11 * IN + 4 * OUT) / 10**6


def state(sidecar: Sidecar, key: str = "rollout/daily") -> Any:
    return {s.key: s for s in sidecar.runtime.budget.ledger.states()}[key]


def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    value = sidecar.runtime.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def worst_case(
    sidecar: Sidecar, payload: dict[str, Any], max_tokens: int | None, bound: bool = False
) -> Decimal:
    """What the gate holds for a call: the exact count near a cap, else the byte bound."""
    spec = sidecar.runtime.snapshot.spec
    count = tokens.bound_tokens if bound else tokens.reservation_tokens
    counted = count("openai.chat", payload, payload["model"])
    return PriceBook(spec.providers).worst_case(
        spec.providers[0], payload["model"], counted, max_tokens
    )


class BillingOpenAI(FakeOpenAI):
    """Bills each call either exactly its worst case or a random amount below it."""

    def __init__(self, seed: int, exact: bool) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.exact = exact

    def usage(self, payload: Any) -> dict[str, Any]:
        counted = tokens.reservation_tokens("openai.chat", payload, payload["model"])
        most = payload["max_tokens"]
        prompt = counted if self.exact else self.rng.randint(1, counted)
        output = most if self.exact else self.rng.randint(0, most)
        return {"prompt_tokens": prompt, "completion_tokens": output,
                "total_tokens": prompt + output}  # fmt: skip

    async def chat(self, request: web.Request, payload: Any, fault: Fault) -> web.StreamResponse:
        await asyncio.sleep(self.rng.uniform(0, 0.05))  # calls overlap, as in production
        return await super().chat(request, payload, fault)


@pytest.mark.parametrize(
    ("seed", "exact", "durable"), [(1, True, False), (2, False, False), (3, True, True)]
)
async def test_property_200_concurrent_calls_never_overspend_the_cap(
    start_sidecar: StartSidecar, seed: int, exact: bool, durable: bool, tmp_path: Path
) -> None:
    """Demand ~3x the cap, 200 calls at once: settled spend <= cap; and when calls bill
    their worst case, what is left unused is less than one call's worst case. With a
    ledger file, every hold is on disk before its call goes out (grouped writes)."""
    fake = await BillingOpenAI(seed, exact).start()
    ledger = tmp_path / "ledger.json" if durable else None
    try:
        cap = Decimal("0.05")
        sidecar = await start_sidecar(
            real_spec(fake, budget={"dailyUSD": str(cap), "onExhausted": "mock"}),
            ledger_path=ledger,
        )
        client = openai_client(sidecar)
        rng = random.Random(seed)
        asks = [
            ([{"role": "user", "content": "word " * rng.randint(1, 600)}], rng.randint(1, 2000))
            for _ in range(200)
        ]

        async def call(messages: list[dict[str, str]], most: int) -> tuple[str, str | None]:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                messages=messages,
                max_tokens=most,
            )
            return raw.headers["x-llm-backend"], raw.headers.get("x-llm-cost-usd")

        answers = await asyncio.gather(*(call(m, n) for m, n in asks))
        worst = [worst_case(sidecar, {"model": "gpt-4o-mini", "messages": m}, n) for m, n in asks]
        assert sum(worst) > 2 * cap, "the test must ask for more than the cap"
        real = [cost for backend, cost in answers if backend == "openai-primary"]
        mocked = [backend for backend, _ in answers if backend == "mock"]
        assert real
        assert mocked
        assert len(real) + len(mocked) == 200
        daily = state(sidecar)
        assert daily.reserved == 0, "every hold was settled or released"
        assert daily.spent <= cap
        assert sum(Decimal(c) for c in real if c) == daily.spent, "headers add up to the ledger"
        assert metric(sidecar, "llm_rollout_budget_refusals_total", budget="rollout/daily") == len(
            mocked
        )
        if exact:
            assert cap - daily.spent < max(worst), "at most one call's worst case left unused"
        if ledger is not None:
            await sidecar.runtime.budget.flush()
            saved = json.loads(ledger.read_text())["budgets"]["rollout/daily"]["spentUSD"]
            assert Decimal(saved) == daily.spent
    finally:
        await fake.stop()


async def test_a_real_answer_carries_its_cost_and_is_counted_by_provider_model_tenant(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(fake_openai, tenants={"header": "x-tenant-id"})
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
        extra_headers={"x-tenant-id": "acme"},
    )
    assert Decimal(raw.headers["x-llm-cost-usd"]) == FAKE_COST == Decimal("0.00000405")
    cost = metric(sidecar, "llm_rollout_cost_usd_total", provider="openai-primary",
                  model="gpt-4o-mini", tenant="acme", arm="real", shadow="false")  # fmt: skip
    assert cost == pytest.approx(float(FAKE_COST))


async def test_reject_answers_429_in_the_dialect_naming_the_budget_and_its_reset(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    spec = real_spec(fake_openai, fake_anthropic,
                     budget={"dailyUSD": "0.000001", "onExhausted": "reject"})  # fmt: skip
    sidecar = await start_sidecar(spec)
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client(sidecar).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    error = caught.value
    assert "rollout/daily" in error.message
    assert "resets at" in error.message
    assert error.response.headers["x-llm-route-reason"] == "budget"
    assert error.response.headers["x-should-retry"] == "false"
    assert 0 < int(error.response.headers["retry-after"]) <= 86_400
    with pytest.raises(anthropic.RateLimitError) as refused:
        await anthropic_client(sidecar).messages.create(
            model="claude-sonnet-5",
            max_tokens=64,
            messages=ASK,
        )
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert fake_openai.requests == [], "nothing was spent"
    assert fake_anthropic.requests == []


async def test_exhausted_budget_serves_the_mock_with_reason_budget(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, budget={"dailyUSD": "0"}))
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
    )
    assert raw.headers["x-llm-backend"] == "mock"
    assert raw.headers["x-llm-route-reason"] == "budget"
    assert raw.parse().choices[0].message.content
    assert "x-llm-cost-usd" not in raw.headers
    assert fake_openai.requests == []


async def test_streams_settle_from_usage_or_at_the_reservation_when_usage_is_unseen(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, fake_anthropic,
                                            budget={"dailyUSD": "10"}))  # fmt: skip
    daily = lambda: state(sidecar).spent  # noqa: E731
    # Anthropic: usage in message_start and message_delta -> 12 in, 5 out at $2 / $10.
    async with anthropic_client(sidecar).messages.stream(
        model="claude-sonnet-5",
        max_tokens=64,
        messages=ASK,
    ) as stream:
        assert await stream.get_final_text() == "Real Anthropic answer."
    assert daily() == Decimal("0.000074")
    client = openai_client(sidecar)
    # OpenAI with include_usage: the usage chunk settles the real cost.
    before = daily()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, max_tokens=50, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    _ = [chunk async for chunk in stream]
    assert daily() - before == FAKE_COST
    # Without include_usage the sidecar asks for usage on the app's behalf: the real cost.
    before = daily()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ASK,
        max_tokens=50,
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    assert daily() - before == FAKE_COST
    assert all(chunk.usage is None and chunk.choices for chunk in chunks), "as the app asked"
    assert fake_openai.requests[-1].json["stream_options"] == {"include_usage": True}
    # Far from the cap, a hold counts the prompt as bytes (no tokenizer tables loaded).
    reservation = worst_case(sidecar, {"model": "gpt-4o-mini", "messages": ASK}, 50, bound=True)
    # A stream cut mid-way may have been billed up to the reservation: charge it.
    fake_openai.faults.append(Fault(cut_after_chunks=2))
    before = daily()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, max_tokens=50, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    with pytest.raises(openai.APIError):
        _ = [chunk async for chunk in stream]
    assert daily() - before == reservation
    assert state(sidecar).reserved == 0


async def test_an_upstream_error_is_not_charged(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(fake_openai, budget={"dailyUSD": "10"}, **NO_RETRY)
    sidecar = await start_sidecar(spec)
    fake_openai.faults.append(Fault(status=500))
    with pytest.raises(openai.InternalServerError):
        await openai_client(sidecar).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert state(sidecar).spent == 0
    assert state(sidecar).reserved == 0


async def test_spend_survives_a_restart_through_the_ledger_file(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.json"
    spec = real_spec(fake_openai, budget={"dailyUSD": "1", "monthlyUSD": "20"})
    first = await start_sidecar(spec, ledger_path=ledger)
    client = openai_client(first)
    for _ in range(3):
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    await first.stop()
    document = json.loads(ledger.read_text())
    assert Decimal(document["budgets"]["rollout/daily"]["spentUSD"]) == 3 * FAKE_COST
    leftovers = [p.name for p in tmp_path.iterdir()]  # noqa: ASYNC240
    assert leftovers == ["ledger.json"], "no temp files left"
    second = await start_sidecar(spec, ledger_path=ledger)
    assert state(second).spent == 3 * FAKE_COST
    assert state(second, "rollout/monthly").spent == 3 * FAKE_COST
    assert metric(second, "llm_rollout_budget_spent_usd", budget="rollout/daily") == (
        pytest.approx(float(3 * FAKE_COST))
    )
    await openai_client(second).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    await second.stop()
    assert Decimal(json.loads(ledger.read_text())["budgets"]["rollout/daily"]["spentUSD"]) == (
        4 * FAKE_COST
    )


async def test_a_corrupt_ledger_counts_as_fully_spent_until_fixed(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = tmp_path / "ledger.json"
    ledger.write_text('{"version": 1, "budgets": {"rollout/daily": ')
    spec = real_spec(fake_openai, budget={"dailyUSD": "100"})
    with caplog.at_level(logging.ERROR, logger="llm_rollout.budget"):
        sidecar = await start_sidecar(spec, ledger_path=ledger)
    assert str(ledger) in caplog.text
    assert "fully spent" in caplog.text
    assert metric(sidecar, "llm_rollout_budget_ledger_errors_total", kind="corrupt") == 1
    client = openai_client(sidecar)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert (raw.headers["x-llm-backend"], raw.headers["x-llm-route-reason"]) == ("mock", "budget")
    assert ledger.read_text().endswith('"rollout/daily": '), "the evidence is kept, not replaced"
    ledger.unlink()  # a person looked and removed it
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-backend"] == "openai-primary"


async def test_tenant_budgets_send_one_tenant_to_the_mock_and_not_another(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    one_call = worst_case(sidecar, {"model": "gpt-4o-mini", "messages": ASK}, 20)
    cap = (one_call + FAKE_COST).quantize(Decimal("0.000001"), ROUND_CEILING)
    spec = real_spec(
        fake_openai, tenants={"header": "x-tenant-id", "default": {"dailyUSD": str(cap)}}
    )
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)

    async def backend(tenant: str | None) -> str:
        extra = {"x-tenant-id": tenant} if tenant else {}
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=ASK,
            max_tokens=20,
            extra_headers=extra,
        )
        return raw.headers["x-llm-backend"]

    assert [await backend("acme") for _ in range(3)] == ["openai-primary"] * 2 + ["mock"]
    assert await backend("globex") == "openai-primary", "another tenant has its own budget"
    assert [await backend(None) for _ in range(3)][-1] == "mock", "no header: tenant 'none'"
    assert state(sidecar, "tenant/acme/daily").spent == 2 * FAKE_COST


async def test_an_unknown_model_is_reported_and_never_free(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    with caplog.at_level(logging.ERROR, logger="llm_rollout.budget"):
        raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
            model="ft:my-model",
            messages=ASK,
        )
    assert raw.headers["x-llm-backend"] == "openai-primary", "no cap: the call goes, unpriced"
    assert "x-llm-cost-usd" not in raw.headers
    assert "ft:my-model" in caplog.text
    assert "prices" in caplog.text
    labels = {"provider": "openai-primary", "model": "ft:my-model"}
    assert metric(sidecar, "llm_rollout_unpriced_requests_total", **labels) == 1
    capped = await start_sidecar(real_spec(fake_openai, budget={"dailyUSD": "100"}))
    raw = await openai_client(capped).chat.completions.with_raw_response.create(
        model="ft:my-model",
        messages=ASK,
    )
    assert raw.headers["x-llm-route-reason"] == "budget", "under a cap, unpriced is not run"
    priced = real_spec(fake_openai, budget={"dailyUSD": "100"})
    priced["providers"][0]["prices"] = {"ft:my-model": {"inputPerMTok": "1", "outputPerMTok": "2"}}
    with_price = await start_sidecar(priced)
    client = openai_client(with_price)
    raw = await client.chat.completions.with_raw_response.create(
        model="ft:my-model",
        messages=ASK,
        max_tokens=10,
    )
    assert Decimal(raw.headers["x-llm-cost-usd"]) == (11 * 1 + 4 * 2) / Decimal(10**6)
    with caplog.at_level(logging.ERROR, logger="llm_rollout.budget"):
        raw = await client.chat.completions.with_raw_response.create(
            model="ft:my-model",
            messages=ASK,
        )
    assert raw.headers["x-llm-route-reason"] == "budget", "no max tokens, no known limit"
    assert "maxOutputTokens" in caplog.text


async def test_threshold_events_are_logged_and_counted_once_per_period(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    probe = await start_sidecar(real_spec(fake_openai))
    one_call = worst_case(probe, {"model": "gpt-4o-mini", "messages": ASK}, 5)
    cap = max(one_call, FAKE_COST * 100 / 60).quantize(Decimal("0.000001"), ROUND_CEILING)
    sidecar = await start_sidecar(real_spec(fake_openai, budget={"dailyUSD": str(cap)}))
    client = openai_client(sidecar)
    with caplog.at_level(logging.WARNING, logger="llm_rollout.budget"):
        for _ in range(3):
            await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=5)
    counts = {
        p: metric(sidecar, "llm_rollout_budget_threshold_events_total",
                  budget="rollout/daily", percent=p)
        for p in ("50", "80", "100")
    }  # fmt: skip
    assert counts == {"50": 1, "80": 0, "100": 1}
    assert caplog.text.count("budget.threshold budget=rollout/daily percent=50") == 1


async def test_a_config_reload_changes_caps_and_keeps_spend(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, budget={"dailyUSD": "0"}))
    client = openai_client(sidecar)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-route-reason"] == "budget"
    sidecar.runtime.apply(parse_spec(real_spec(fake_openai, budget={"dailyUSD": "1"})), "test")
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert raw.headers["x-llm-backend"] == "openai-primary"
    assert metric(sidecar, "llm_rollout_budget_cap_usd", budget="rollout/daily") == 1.0
    assert state(sidecar).spent == FAKE_COST


def test_the_ledger_file_is_a_command_line_option(tmp_path: Path) -> None:
    args = parse_args(["--config", "c.yaml", "--budget-ledger", str(tmp_path / "l.json")])
    assert args.budget_ledger == tmp_path / "l.json"


async def test_gemini_and_embeddings_are_priced_under_a_cap(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    spec = real_spec(fake_openai, gemini_fake=fake_gemini, budget={"dailyUSD": "1"})
    sidecar = await start_sidecar(spec)
    async with gemini_client(sidecar).aio as client:
        response = await client.models.generate_content(
            model="gemini-2.5-flash",
            contents="Hello",
            config=genai_types.GenerateContentConfig(max_output_tokens=100),
        )
    assert response.sdk_http_response is not None
    headers = response.sdk_http_response.headers or {}
    # 9 prompt tokens (1 cached), 4 answer + 2 thinking: $0.30 / $0.03 / $2.50 per MTok.
    expected = (8 * Decimal("0.30") + 1 * Decimal("0.03") + 6 * Decimal("2.50")) / 10**6
    assert Decimal(headers["x-llm-cost-usd"]) == expected
    embedded = await openai_client(sidecar).embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="Hello"
    )
    # 7 prompt tokens at $0.02 per MTok; an embedding reserves no output.
    assert Decimal(embedded.headers["x-llm-cost-usd"]) == 7 * Decimal("0.02") / 10**6
    assert state(sidecar).spent == expected + 7 * Decimal("0.02") / 10**6
