"""The chart's control Service fronts both operator replicas; this is what makes that work.

The standby replica (paused by kopf peering) knows no rollout. It must close the
connection when it says so, or a sidecar whose kept-alive connection the Service sent
there would retry against it forever instead of reaching the active replica.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from proxy.config import LabelSelector
from rollout_operator.control import build_app
from rollout_operator.hub import Hub


class AnyToken:
    async def authenticate(self, token: str, namespace: str, selector: LabelSelector | None) -> str:
        return "pod-a"


async def test_standby_replica_makes_each_sidecar_retry_open_a_new_connection() -> None:
    peers: list[Any] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        response: web.StreamResponse = await handler(request)
        return response

    app = build_app(Hub(), AnyToken())
    app.middlewares.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/namespaces/shop/llmrollouts/m/config"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as session:
            for _ in range(3):
                async with session.get(url, params={"after": "0", "timeout": "1"}) as response:
                    assert response.status == 404
                    assert "no LLMRollout shop/m" in (await response.json())["error"]
    finally:
        await runner.cleanup()
    assert len(set(peers)) == 3  # three connections: each retry can land on another replica
