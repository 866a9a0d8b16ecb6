"""Budgets across the fallback chain: the hold covers the dearest provider the chain can
reach, and an answer is charged at the rates of the provider that gave it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import StartSidecar, openai_client
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Hello"}]
CHEAP = {"inputPerMTok": "1", "outputPerMTok": "1"}
DEAR = {"inputPerMTok": "1000", "outputPerMTok": "1000"}


@pytest.fixture
async def two_fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    primary, backup = await FakeOpenAI().start(), await FakeOpenAI().start()
    yield primary, backup
    await primary.stop()
    await backup.stop()


def spec(primary: FakeOpenAI, backup: FakeOpenAI, daily: str) -> dict[str, Any]:
    def provider(name: str, fake: FakeOpenAI, prices: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "type": "openai", "baseURL": f"{fake.base}/v1",
                "apiKey": {"env": "TEST_OPENAI_KEY"}, "prices": {"my-model": prices}}  # fmt: skip

    return {
        "providers": [provider("primary", primary, CHEAP), provider("backup", backup, DEAR)],
        "fallback": ["primary", "backup", "mock"],
        "traffic": {"realWeight": 100},
        "retry": {"maxAttempts": 1},
        "budget": {"dailyUSD": daily, "onExhausted": "mock"},
    }


async def test_fallback_answer_is_charged_at_its_own_rates(
    start_sidecar: StartSidecar, two_fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    primary, backup = two_fakes
    sidecar = await start_sidecar(spec(primary, backup, daily="100"))
    primary.faults.append(Fault(status=500))
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="my-model", messages=ASK, max_tokens=10
    )
    assert raw.headers["x-llm-backend"] == "backup"
    # The fake reports 11 input and 4 output tokens; backup's rates are $1000 per million.
    assert Decimal(raw.headers["x-llm-cost-usd"]) == Decimal(15 * 1000) / 10**6


async def test_hold_covers_the_dearest_reachable_provider(
    start_sidecar: StartSidecar, two_fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    primary, backup = two_fakes
    # Enough for the primary's worst case ($1/M tokens), far too little for the backup's.
    sidecar = await start_sidecar(spec(primary, backup, daily="0.001"))
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="my-model", messages=ASK, max_tokens=10
    )
    assert raw.headers["x-llm-backend"] == "mock"
    assert raw.headers["x-llm-route-reason"] == "budget"
    assert primary.requests == [], "no call may start that a fallback could overspend"


async def test_real_arm_answered_by_mock_counts_as_failure_for_analysis(
    start_sidecar: StartSidecar, two_fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    primary, backup = two_fakes
    sidecar = await start_sidecar(spec(primary, backup, daily="100"))
    primary.faults.append(Fault(status=500))
    backup.faults.append(Fault(status=500))
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="my-model", messages=ASK, max_tokens=10
    )
    assert raw.headers["x-llm-backend"] == "mock", "the client still gets an answer"
    window = sidecar.runtime.stats.drain()
    assert window["real"].requests == 1
    assert window["real"].errors == 1, "the rollout's analysis sees the provider failure"
    assert "mock" not in window, "a real-routed request is judged in the real arm"
