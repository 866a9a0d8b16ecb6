"""The operator's `/metrics`: each rollout's phase, weight, shadow and step, at scrape time.

Read from the Hub when Prometheus scrapes rather than updated by the handlers, so
the numbers cannot go stale and the kopf handlers stay as they are. Only the active
replica knows rollouts (kopf pauses the other), so the standby exports none and a
`max by` over both replicas is the truth. The chart's `LLMRolloutAborted` alert reads
`llm_rollout_rollout_phase{phase="Aborted"}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rollout_operator.hub import Hub
from rollout_operator.steps import Phase

PHASES: tuple[str, ...] = get_args(Phase)


class HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        phase = GaugeMetricFamily(
            "llm_rollout_rollout_phase",
            "1 for the rollout's current phase, 0 for the others.",
            labels=["namespace", "rollout", "phase"],
        )
        weight = GaugeMetricFamily(
            "llm_rollout_rollout_real_weight_percent",
            "Percent of requests the rollout currently sends to real providers.",
            labels=["namespace", "rollout"],
        )
        shadow = GaugeMetricFamily(
            "llm_rollout_rollout_shadow_percent",
            "Percent of mock-routed requests the rollout currently copies to the real arm.",
            labels=["namespace", "rollout"],
        )
        step = GaugeMetricFamily(
            "llm_rollout_rollout_step",
            "Index of the rollout's current step.",
            labels=["namespace", "rollout"],
        )
        for (namespace, name), live in sorted(self.hub.rollouts.items()):
            for candidate in PHASES:
                current = 1.0 if live.state.phase == candidate else 0.0
                phase.add_metric([namespace, name, candidate], current)
            weight.add_metric([namespace, name], float(live.state.real_weight))
            shadow.add_metric([namespace, name], float(live.state.shadow_percent))
            step.add_metric([namespace, name], float(live.state.step_index))
        failures = CounterMetricFamily(
            "llm_rollout_control_auth_failures",
            "Control-channel calls refused (401: no valid token; 403: not a pod of the rollout).",
            labels=["namespace", "rollout", "status"],
        )
        for (namespace, name, status), count in sorted(self.hub.auth_failures.items()):
            failures.add_metric([namespace, name, status], float(count))
        yield from (phase, weight, shadow, step, failures)


def add_metrics_route(app: web.Application, hub: Hub) -> None:
    """Serve `/metrics` for `hub` on `app` (the control channel's port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/metrics", metrics)
