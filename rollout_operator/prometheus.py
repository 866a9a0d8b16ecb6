"""Reading analysis metrics from Prometheus (`analysis.metrics[].prometheus`), as Argo does.

The query must return one number (a scalar, or a vector with one sample); the
value is judged against the metric's `max`/`min` like the sidecar-reported ones.
A failed or empty query is "not measured" (inconclusive), never a pass.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from proxy.config import LLMRolloutSpec

log = logging.getLogger("llm_rollout.operator.prometheus")


def _value(payload: object) -> float | None:
    if not isinstance(payload, dict) or payload.get("status") != "success":
        return None
    data = payload.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list):
        return float(result[1])
    if data.get("resultType") == "vector" and isinstance(result, list) and len(result) == 1:
        return float(result[0]["value"][1])
    return None


async def query(session: aiohttp.ClientSession, address: str, promql: str) -> float | None:
    url = address.rstrip("/") + "/api/v1/query"
    try:
        async with session.get(
            url, params={"query": promql}, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            value = _value(await response.json(content_type=None))
    except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as error:
        log.warning("prometheus %s: query %r failed: %s", address, promql, error)
        return None
    if value is None:
        log.warning("prometheus %s: query %r did not return one number", address, promql)
    return value


async def collect(session: aiohttp.ClientSession, spec: LLMRolloutSpec) -> dict[str, float | None]:
    """The current value of every Prometheus-sourced metric of `spec`, by metric name."""
    analysis = spec.strategy.analysis if spec.strategy else None
    sourced = [m for m in (analysis.metrics if analysis else []) if m.prometheus is not None]
    values = await asyncio.gather(
        *(query(session, m.prometheus.address, m.prometheus.query) for m in sourced if m.prometheus)
    )
    return {m.name: v for m, v in zip(sourced, values, strict=True)}
