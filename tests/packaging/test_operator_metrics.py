"""The operator's /metrics, which the chart's ServiceMonitor scrapes and its alerts read."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxy.config import LLMRolloutSpec
from rollout_operator.hub import Hub, Live
from rollout_operator.ledger import Ledger
from rollout_operator.metrics import add_metrics_route
from rollout_operator.steps import RolloutState


def live(phase: str, weight: int, step: int, shadow: int = 0) -> Live:
    state = RolloutState(phase=phase, real_weight=weight, step_index=step,  # type: ignore[arg-type]
                         shadow_percent=shadow)  # fmt: skip
    return Live(spec=LLMRolloutSpec(), state=state, ledger=Ledger(cap=None), generation=1,
                version=1)  # fmt: skip


async def test_each_rollout_exports_its_phase_weight_and_step() -> None:
    hub = Hub()
    hub.rollouts[("shop", "marketing")] = live("Aborted", 0, 2)
    hub.rollouts[("search", "ranker")] = live("Progressing", 25, 2, shadow=40)
    app = web.Application()
    add_metrics_route(app, hub)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        text = await response.text()
    lines = set(text.splitlines())
    assert (
        'llm_rollout_rollout_phase{namespace="shop",phase="Aborted",rollout="marketing"} 1.0'
        in lines
    )
    assert (
        'llm_rollout_rollout_phase{namespace="shop",phase="Healthy",rollout="marketing"} 0.0'
        in lines
    )
    assert (
        'llm_rollout_rollout_real_weight_percent{namespace="search",rollout="ranker"} 25.0' in lines
    )
    assert 'llm_rollout_rollout_step{namespace="search",rollout="ranker"} 2.0' in lines
    assert 'llm_rollout_rollout_shadow_percent{namespace="search",rollout="ranker"} 40.0' in lines


async def test_a_standby_replica_exports_no_rollout() -> None:
    app = web.Application()
    add_metrics_route(app, Hub())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        text = await (await client.get("/metrics")).text()
    assert "llm_rollout_rollout_phase{" not in text
