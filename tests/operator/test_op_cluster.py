"""The cluster's shared limits through real sidecars: the budget cap across three sidecars'
own budget gates, and each sidecar's share of a provider's rate limit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import LABELS, Cluster

from proxy.config import parse_spec
from proxy.config.model import RateLimit
from proxy.resilience.ratelimit import Limiter
from proxy.server.control import ControlClient
from proxy.server.serve import Address, Sidecar
from rollout_operator.ledger import rate_share
from tests.fakes.openai import FakeOpenAI

#: gpt-4o-mini's published prices per million tokens.
IN, OUT = Decimal("0.15"), Decimal("0.60")
MAX_TOKENS = 200
#: The fake bills one input token and the whole max_tokens: each answer costs this.
COST = (1 * IN + MAX_TOKENS * OUT) / 10**6
CAP = Decimal("0.02")  # about 166 answers' worth


class BillingOpenAI(FakeOpenAI):
    """Bills every answer as using all the tokens the request allowed (known usage)."""

    def usage(self, payload: Any) -> dict[str, Any]:
        out = int(payload["max_tokens"])
        return {"prompt_tokens": 1, "completion_tokens": out, "total_tokens": 1 + out}


@pytest.fixture
async def billing(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-real-openai")
    fake = BillingOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


def spec_for(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": LABELS},
        "providers": [{"name": "openai-primary", "type": "openai", "baseURL": f"{fake.base}/v1",
                       "apiKey": {"env": "TEST_OPENAI_KEY"}}],
        "traffic": {"realWeight": 100},
        "fallback": ["openai-primary", "mock"],
        **extra,
    }  # fmt: skip


async def hammer(cluster: Cluster, per_sidecar: int, concurrency: int) -> dict[str, int]:
    """`per_sidecar` chat calls into every sidecar at once with the official SDK."""
    backends: dict[str, int] = {}

    async def sidecar_load(port: int) -> None:
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="app-key", max_retries=0
        )
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                raw = await client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", max_tokens=MAX_TOKENS,
                    messages=[{"role": "user", "content": "Write a haiku."}],
                )  # fmt: skip
                raw.parse()
                backend = raw.headers["x-llm-backend"]
                backends[backend] = backends.get(backend, 0) + 1

        try:
            await asyncio.gather(*(one() for _ in range(per_sidecar)))
        finally:
            await client.close()

    await asyncio.gather(*(sidecar_load(s.data_port) for s, _ in cluster.sidecars))
    return backends


async def test_three_sidecars_spend_the_cluster_cap_through_their_own_gates(
    cluster: Cluster, billing: BillingOpenAI
) -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", spec_for(billing, budget={"dailyUSD": str(CAP)}))
    sidecars = await cluster.start_sidecars("marketing", 3)
    await cluster.wait_weights(100)

    backends = await hammer(cluster, per_sidecar=120, concurrency=12)

    billed = len(billing.requests) * COST
    answered_real = backends.get("openai-primary", 0)
    print(f"\n3 sidecars, 360 requests, cap ${CAP}: {backends}; billed ${billed}")
    assert sum(backends.values()) == 360, "every request was answered"
    assert answered_real == len(billing.requests)
    assert billed <= CAP, f"the providers billed ${billed}, over the cluster cap ${CAP}"
    assert backends.get("mock", 0) > 0, "demand was above the cap: the rest went to the mock"
    # Measured 88-99 %; the rest is parked in the sidecars' last slices (<= cap/20 each).
    assert billed >= CAP * Decimal("0.7"), f"only ${billed} of ${CAP} was used"
    labels = {"provider": "openai-primary", "model": "gpt-4o-mini", "tenant": "none",
              "arm": "real", "shadow": "false"}  # fmt: skip
    spent_by = [
        s.runtime.metrics.registry.get_sample_value("llm_rollout_cost_usd_total", labels) or 0.0
        for s in sidecars
    ]
    assert all(spent > 0 for spent in spent_by), f"each sidecar spent a share: {spent_by}"
    assert sum(spent_by) == pytest.approx(float(billed)), "the gates settled what was billed"

    # The operator's ledger follows what the sidecars settled (reported every window).
    status = await cluster.wait_status(
        "marketing",
        lambda s: abs(Decimal(s["budget"]["spentUSD"]) - billed) <= Decimal("0.000001"),
    )
    assert Decimal(status["budget"]["spentUSD"]) + Decimal(status["budget"]["reservedUSD"]) <= CAP

    # Sidecars that leave give their unspent slices back at once, not after the lease TTL.
    for sidecar, control in cluster.sidecars:
        await sidecar.stop()
        await control.stop()
    status = await cluster.wait_status("marketing", lambda s: s["budget"]["leases"] == [])
    assert status["budget"]["reservedUSD"] == "0.00"
    assert abs(Decimal(status["budget"]["spentUSD"]) - billed) <= Decimal("0.000001")


async def test_with_the_operator_away_nothing_is_granted_and_spend_fails_closed(
    billing: BillingOpenAI, tmp_path: Path
) -> None:
    """A sidecar told to follow an operator that cannot be reached holds no slice: its
    start-up config's cap is the operator's, so real calls follow `onExhausted: reject`."""
    spec = parse_spec(spec_for(billing, budget={"dailyUSD": "5", "onExhausted": "reject"}))
    sidecar = Sidecar(spec, None, listen=Address("127.0.0.1", 0),
                      admin_listen=Address("127.0.0.1", 0))  # fmt: skip
    await sidecar.start()
    token = tmp_path / "token"
    token.write_text("token-app-0")
    client = ControlClient(sidecar.runtime, "http://127.0.0.1:9", "shop/marketing", token,
                           sidecar="app-0", poll_seconds=1, min_stats_interval=0.25)  # fmt: skip
    await client.start()
    sdk = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1", api_key="app-key", max_retries=0
    )
    try:
        await asyncio.sleep(0.5)  # the keeper has tried, and failed, to get a slice
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(
                model="gpt-4o-mini", max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": "hi"}],
            )  # fmt: skip
        assert refused.value.response.headers["x-llm-route-reason"] == "budget"
        assert billing.requests == [], "nothing granted: nothing sent"
    finally:
        await sdk.close()
        await client.stop()
        await sidecar.stop()


def test_each_sidecar_enforces_its_share_of_the_requests_per_minute() -> None:
    """The operator divides 600 RPM between 2 sidecars; each limiter, driven with its share
    and offered far more, admits 300 a minute once its first minute's burst is spent."""
    limiters = [Limiter(RateLimit(requestsPerMinute=rate_share(600, 2)), now=0.0)
                for _ in range(2)]  # fmt: skip
    admitted = [0, 0]
    for second in range(120):
        for index, limiter in enumerate(limiters):
            for _ in range(20):  # 1200 a minute: four times the share
                granted = limiter.reserve(0, now=float(second), max_wait=0.0) is not None
                if granted and second >= 60:
                    admitted[index] += 1
    assert admitted == [300, 300]
    assert sum(admitted) == 600, "together: the cluster-wide limit"


async def test_a_connected_sidecar_sizes_its_rate_limiter_to_its_share(
    cluster: Cluster, billing: BillingOpenAI
) -> None:
    await cluster.start_operator()
    spec = spec_for(billing)
    spec["providers"][0]["rateLimit"] = {"requestsPerMinute": 600, "tokensPerMinute": 90000}
    await cluster.apply("marketing", spec)
    sidecars = await cluster.start_sidecars("marketing", 2)

    def capacities() -> list[tuple[float, float]]:
        seen = []
        for sidecar in sidecars:
            if not sidecar.runtime.snapshot.spec.providers:
                seen.append((0.0, 0.0))  # the operator's config has not arrived yet
                continue
            lim = sidecar.runtime.resilience.get("openai-primary").limiter
            assert lim.requests is not None
            assert lim.tokens is not None
            seen.append((lim.requests.capacity, lim.tokens.capacity))
        return seen

    for _ in range(100):
        if capacities() == [(300, 45000)] * 2:
            break
        await asyncio.sleep(0.05)
    assert capacities() == [(300, 45000)] * 2, "each enforces half of the cluster-wide limit"
