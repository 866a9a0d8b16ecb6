"""The quality gate under kopf: shadow steps and quality metrics judged from real sidecars.

The operator runs for real against the emulated API server; sidecars follow it and
answer through the official OpenAI SDK; the "real" provider is a local fake.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conftest import Cluster, provider_spec


def shadows(cluster: Cluster) -> list[int]:
    """The shadow percent each sidecar applies (0 until the operator says otherwise)."""
    out = []
    for sidecar, _ in cluster.sidecars:
        shadow = sidecar.runtime.snapshot.spec.traffic.shadow
        out.append(0 if shadow is None else shadow.percent)
    return out


async def wait_shadows(cluster: Cluster, percent: int, within: float = 10) -> None:
    """Until every sidecar applies `percent` (the operator pushes it over the long-poll)."""
    deadline = time.monotonic() + within
    while shadows(cluster) != [percent] * len(cluster.sidecars):
        assert time.monotonic() < deadline, f"sidecars at {shadows(cluster)}, not {percent}"
        await asyncio.sleep(0.02)


def shadow_sent(cluster: Cluster) -> float:
    """Shadow copies the sidecars sent and got an answer to."""
    labels = {"provider": "openai-primary", "result": "sent"}
    return sum(
        s.runtime.metrics.registry.get_sample_value("llm_rollout_shadow_requests_total", labels)
        or 0.0
        for s, _ in cluster.sidecars
    )


SHADOW_FIRST: dict[str, Any] = {
    "steps": [{"setShadow": 100}, {"pause": {"duration": "2s"}}, {"setWeight": 50},
              {"pause": {}}],
    "analysis": {"interval": "1s", "failureLimit": 1, "minRequests": 3,
                 "metrics": [{"name": "error-rate", "max": 0.05}]},
}  # fmt: skip


async def test_shadow_steps_are_judged_on_the_copies_before_any_user_gets_a_real_answer(
    cluster: Cluster,
) -> None:
    await cluster.start_operator()
    spec = provider_spec(cluster, traffic={"shadow": {"percent": 0, "maxConcurrent": 4}},
                         strategy=SHADOW_FIRST)  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_status("marketing", lambda s: s["shadowPercent"] == 100)
    async with cluster.traffic(rps=30) as counts:
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Paused")
        await cluster.wait_weights(50)
    assert (status["realWeight"], status["shadowPercent"]) == (50, 100)
    # The pause at shadow 100 % / weight 0 % ended on a passing analysis of copies alone:
    # every real-arm request in that window was a shadow copy; no user got a real answer.
    (gate,) = [h for h in status["history"] if h["step"] == 1 and h["verdict"] == "Passed"]
    assert (gate["weight"], gate["shadow"]) == (0, 100)
    assert gate["requests"]["real"] == gate["quality"]["real"]["shadowRequests"] >= 3
    assert gate["requests"]["mock"] >= gate["requests"]["real"]
    assert shadow_sent(cluster) > 0, "the provider answered copies"
    assert counts.get("openai-primary", 0) > 0, "then, at 50 %, users got real answers"


async def test_a_provider_failing_the_shadow_copies_rolls_back_and_stops_the_copies(
    cluster: Cluster,
) -> None:
    await cluster.start_operator()
    strategy = SHADOW_FIRST | {"steps": [{"setShadow": 100}, {"pause": {"duration": "1m"}}]}
    spec = provider_spec(cluster, traffic={"shadow": {"percent": 0, "maxConcurrent": 4}},
                         strategy=strategy)  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_status("marketing", lambda s: s["shadowPercent"] == 100)
    await wait_shadows(cluster, 100)
    cluster.provider.failing = True
    async with cluster.traffic(rps=30) as counts:
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Degraded")
        await wait_shadows(cluster, 0)  # the sidecars stop copying to the failing provider
    assert set(counts) == {"mock"}, f"no user saw the failing provider: {counts}"
    assert (status["realWeight"], status["shadowPercent"]) == (0, 0)
    rolled_back = await cluster.wait_event("RolledBack")
    assert "shadow off: error-rate 1 > max 0.05 (real arm; mock arm 0)" in rolled_back["message"]
