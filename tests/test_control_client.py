"""The sidecar's end of the control channel: its stats cadence and what it does when the
operator cannot take a window (a small fake operator on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxy.config import parse_spec
from proxy.server.control import MAX_STATS_INTERVAL, ControlClient, stats_cadence
from proxy.server.serve import Address, Sidecar

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def fake_operator(
    tmp_path: Path, *, stats: Handler, config: Handler, allowance: Handler
) -> AsyncIterator[str]:
    """The operator's control endpoints for rollout shop/r on loopback, and the sidecar's
    token file in `tmp_path`; yields the control URL."""
    app = web.Application()
    base = "/v1/namespaces/shop/llmrollouts/r"
    app.router.add_post(base + "/stats", stats)
    app.router.add_get(base + "/config", config)
    app.router.add_post(base + "/allowance", allowance)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    (tmp_path / "token").write_text("t")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("analysis", "floor", "seconds"),
    [({"interval": "1s"}, 0.25, 0.5), ({"interval": "1s"}, 1.0, 1.0),
     ({"interval": "10s"}, 1.0, 5.0), ({"interval": "10m"}, 1.0, MAX_STATS_INTERVAL),
     (None, 1.0, MAX_STATS_INTERVAL)],
)  # fmt: skip
def test_stats_follow_the_rollouts_analysis_interval(
    analysis: dict[str, str] | None, floor: float, seconds: float
) -> None:
    """Two windows per analysis, so no analysis falls between pushes; bounded both ways."""
    strategy = {"steps": [{"setWeight": 5}]} | ({"analysis": analysis} if analysis else {})
    assert stats_cadence(parse_spec({"strategy": strategy}), floor) == seconds


@pytest.mark.parametrize(("refusal", "kept"), [(503, True), (400, False)])
async def test_a_window_the_operator_could_not_take_is_sent_with_the_next(
    tmp_path: Path, refusal: int, kept: bool
) -> None:
    """Kept after a failure (503: the operator away, or a standby); dropped after a 400
    (the operator read it and refused it: sent again, it would only grow and be refused
    again, and the pod's analysis would stay blind)."""
    pushes: list[dict[str, Any]] = []
    answers = [refusal, 204, 204]

    async def stats(request: web.Request) -> web.Response:
        pushes.append(json.loads(await request.read()))
        return web.Response(status=answers[min(len(pushes), len(answers)) - 1])

    async def config(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)  # a long-poll that times out: no new config
        return web.Response(status=304)

    every_second = {"strategy": {"steps": [{"setWeight": 5}], "analysis": {"interval": "1s"}}}
    sidecar = Sidecar(parse_spec(every_second), None, listen=Address("127.0.0.1", 0),
                      admin_listen=Address("127.0.0.1", 0))  # fmt: skip
    async with fake_operator(tmp_path, stats=stats, config=config, allowance=config) as url:
        client = ControlClient(sidecar.runtime, url, "shop/r", tmp_path / "token",
                               sidecar="pod-a", min_stats_interval=0.1)  # fmt: skip
        try:
            await client.start()
            sidecar.runtime.stats.record("mock", 200, 0.01)
            for _ in range(100):
                if len(pushes) >= 1:
                    break
                await asyncio.sleep(0.05)
            sidecar.runtime.stats.record("mock", 200, 0.01)
            for _ in range(100):
                if len(pushes) >= 3:
                    break
                await asyncio.sleep(0.05)
        finally:
            await client.stop()
    counts = [p["arms"].get("mock", {}).get("requests", 0) for p in pushes[:3]]
    assert counts[0] >= 1, f"the first window, refused with {refusal}"
    if kept:
        assert counts[1] == 2, "kept and sent again with the next window's request"
    else:
        assert counts[1] == 1, "dropped: only the next window's request is sent"
    assert counts[2] == 0, "taken: not sent a third time"


async def test_stopping_while_new_configs_arrive_always_stops(tmp_path: Path) -> None:
    """A sidecar told to stop as the operator's new config lands stops at once, every time.
    (Python 3.11's asyncio.wait_for swallowed a cancel that came in the loop turn its event
    was set: the stats loop went on, `stop()` waited on it for ever, and `make demo-cluster`
    hung on Ctrl-C in about one run in eight.)"""

    async def config(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))  # a new version for every long-poll
        body = {"version": after + 1, "phase": "Progressing", "spec": {}}
        return web.json_response(body)

    async def taken(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    sidecar = Sidecar(parse_spec({}), None, listen=Address("127.0.0.1", 0),
                      admin_listen=Address("127.0.0.1", 0))  # fmt: skip
    hung = 0
    async with fake_operator(tmp_path, stats=taken, config=config, allowance=taken) as url:
        for attempt in range(60):
            client = ControlClient(sidecar.runtime, url, "shop/r", tmp_path / "token",
                                   sidecar="pod-a", min_stats_interval=0.01)  # fmt: skip
            await client.start()
            await asyncio.sleep(0.002 * (attempt % 20))
            stopping = asyncio.create_task(client.stop())
            done, _ = await asyncio.wait([stopping], timeout=5)
            if not done:
                hung += 1
                for task in client._tasks:  # cancel again so the test can clean up
                    task.cancel()
                await stopping
    assert hung == 0, f"{hung} of 60 stops hung while configs arrived"
