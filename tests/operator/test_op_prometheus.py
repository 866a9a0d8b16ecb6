"""Analysis metrics read from Prometheus (a local fake speaking its query API)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from proxy.config import ArmWindow, parse_spec
from rollout_operator.analysis import judge
from rollout_operator.prometheus import collect


@pytest.fixture
async def prometheus() -> AsyncIterator[str]:
    answers = {
        "good": {"status": "success", "data": {"resultType": "vector",
                 "result": [{"metric": {}, "value": [1700000000, "0.97"]}]}},
        "many": {"status": "success", "data": {"resultType": "vector", "result": [
                 {"value": [1, "1"]}, {"value": [1, "2"]}]}},
        "broken": {"status": "error", "errorType": "bad_data", "error": "parse error"},
    }  # fmt: skip

    async def query(request: web.Request) -> web.Response:
        return web.json_response(answers[request.query["query"]])

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def test_prometheus_metrics_are_judged_with_the_same_thresholds(prometheus: str) -> None:
    spec = parse_spec({"strategy": {"steps": [{"setWeight": 5}], "analysis": {
        "minRequests": 1, "metrics": [
            {"name": "success-ratio", "min": 0.99,
             "prometheus": {"address": prometheus, "query": "good"}},
            {"name": "ambiguous", "max": 5, "prometheus": {"address": prometheus, "query": "many"}},
            {"name": "broken", "max": 5, "prometheus": {"address": prometheus, "query": "broken"}},
        ]}}})  # fmt: skip
    async with aiohttp.ClientSession() as session:
        values = await collect(session, spec)
    assert values == {"success-ratio": 0.97, "ambiguous": None, "broken": None}
    assert spec.strategy is not None
    assert spec.strategy.analysis is not None
    result = judge(
        spec.strategy.analysis,
        {"real": ArmWindow(requests=5, latency_buckets=[5] + [0] * 17)},
        values,
    )
    assert result.verdict == "Failed"
    assert result.detail == "success-ratio 0.97 < min 0.99 (real arm; mock arm n/a)"


async def test_unreachable_prometheus_is_not_measured() -> None:
    source = {"address": "http://127.0.0.1:9", "query": "up"}
    metrics = [{"name": "x", "max": 1, "prometheus": source}]
    spec = parse_spec({"strategy": {"steps": [{"setWeight": 5}], "analysis": {"metrics": metrics}}})
    async with aiohttp.ClientSession() as session:
        assert await collect(session, spec) == {"x": None}
