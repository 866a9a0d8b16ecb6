"""The dashboard's server: the page, a JSON view of the rollouts, live updates, the commands.

One poller reads the rollouts through the plugin's client every second and pushes each
change to every open page as a server-sent event; a failed read is pushed too, so the
page says the API is away (and since when) instead of showing stale numbers as live.
Actions call the same `steer.command` as `kubectl llmrollout promote|abort|...`.

It listens on 127.0.0.1 by default. Because a page from any other site could make the
browser post to it, actions take only JSON (a cross-site form cannot send it without a
CORS preflight, which this server never grants), from a page whose Origin and Host are
this server's own (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp_sse import sse_response

from rollout_operator import steer
from rollout_operator.kube import KubeClient, KubeError
from rollout_operator.reconcile import SWITCHES

STATIC = Path(__file__).parent / "static"
DEFAULT_PORT = 3100


class Board:
    """The latest view of the rollouts, and an event for each time it changes."""

    def __init__(self, client: KubeClient, namespace: str | None, poll: float = 1.0) -> None:
        self.client, self.namespace, self.poll = client, namespace, poll
        self.state: dict[str, Any] = {"api": None, "rollouts": [], "at": time.time()}
        self.changed = asyncio.Condition()
        self.version = 0

    async def read(self) -> dict[str, Any]:
        """The rollouts now, or what kept us from reading them (and since when)."""
        now = time.time()
        try:
            rollouts = await steer.rollouts(self.client, self.namespace)
        except (steer.SteerError, KubeError, OSError, aiohttp.ClientError, TimeoutError) as error:
            since = self.state.get("apiDownSince") or now
            return {**self.state, "api": str(error) or type(error).__name__,
                    "apiDownSince": since, "at": now}  # fmt: skip
        return {"api": None, "rollouts": rollouts, "at": now, "context": self.client.context,
                "namespace": self.namespace}  # fmt: skip

    async def run(self) -> None:
        while True:
            state = await self.read()
            if {**state, "at": 0} != {**self.state, "at": 0}:
                async with self.changed:
                    self.state, self.version = state, self.version + 1
                    self.changed.notify_all()
            else:
                self.state["at"] = state["at"]
            await asyncio.sleep(self.poll)


@dataclass
class Listening:
    address: str
    port: int = 0  # known once bound


BOARD = web.AppKey("board", Board)
LISTENING = web.AppKey("listening", Listening)


def _same_origin(request: web.Request) -> bool:
    listening = request.app[LISTENING]
    local = {f"{host}:{listening.port}" for host in ("127.0.0.1", "localhost", "[::1]")}
    host_ok = request.host in local or listening.address not in ("127.0.0.1", "localhost")
    origin = request.headers.get("Origin")
    return host_ok and (origin is None or origin.split("://", 1)[-1] == request.host)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[BOARD].state)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole state at once, then again on every change."""
    board: Board = request.app[BOARD]
    async with sse_response(request) as events:
        seen = -1
        while events.is_connected():
            async with board.changed:
                if board.version == seen:
                    with contextlib.suppress(TimeoutError):  # not wait_for: it can eat a cancel
                        async with asyncio.timeout(5):
                            await board.changed.wait()
                seen = board.version
                payload = json.dumps(board.state)
            try:
                await events.send(payload, event="state")
            except ConnectionResetError:  # the page was closed or reloaded
                break
    return events


async def events(request: web.Request) -> web.Response:
    """The rollout's recent Events, newest first."""
    board: Board = request.app[BOARD]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        listed = await board.client.request("GET", f"/api/v1/namespaces/{namespace}/events")
    except (KubeError, OSError, aiohttp.ClientError) as error:
        return web.json_response({"error": str(error)}, status=502)
    mine = [e for e in listed.get("items") or []
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == "LLMRollout"]  # fmt: skip

    def when(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime")
                   or event["metadata"].get("creationTimestamp") or "")  # fmt: skip

    return web.json_response(sorted(mine, key=when, reverse=True)[:50])


async def act(request: web.Request) -> web.Response:
    """Any of `reconcile.VERBS` (promote, abort, ..., cache-flush), as the plugin sends it."""
    if request.content_type != "application/json" or not _same_origin(request):
        return web.json_response({"ok": False, "text": "actions take JSON from this page"},
                                 status=403)  # fmt: skip
    board: Board = request.app[BOARD]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    verb = request.match_info["verb"]
    body = await request.json()
    try:
        outcome = await steer.command(board.client, namespace, name, verb, _argument(verb, body))
    except steer.SteerError as error:
        return web.json_response({"ok": False, "text": str(error)}, status=400)
    except (KubeError, OSError, aiohttp.ClientError) as error:
        return web.json_response({"ok": False, "text": f"API server: {error}"}, status=502)
    return web.json_response({"ok": outcome.ok, "text": outcome.text},
                             status=200 if outcome.ok else 409)  # fmt: skip


def _argument(verb: str, body: Any) -> str:
    """What follows the verb, as the plugin's command line has it: set-weight's weight, a
    provider switch's provider (checked by the operator against the rollout's providers)."""
    if verb == "set-weight":
        return str(int(body["weight"]))
    if verb in SWITCHES:
        provider = body.get("provider") if isinstance(body, dict) else None
        if not isinstance(provider, str) or not provider.strip():
            raise steer.SteerError(f'{verb}: name the provider ({{"provider": NAME}})')
        return provider.strip()
    return ""


def build_app(board: Board, listening: Listening) -> web.Application:
    app = web.Application()
    app[BOARD], app[LISTENING] = board, listening
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/rollouts/{namespace}/{name}/events", events)
    app.router.add_post("/api/rollouts/{namespace}/{name}/{verb}", act)
    return app


async def start(client: KubeClient, namespace: str | None, address: str,
                port: int | None) -> tuple[web.AppRunner, str, asyncio.Task[None]]:  # fmt: skip
    """Listen (on `port`, or on 3100 or any free port when none is asked for); the URL."""
    board = Board(client, namespace)
    poller = asyncio.create_task(board.run())
    for candidate in [port] if port is not None else [DEFAULT_PORT, 0]:
        listening = Listening(address)
        runner = web.AppRunner(build_app(board, listening), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, address, candidate)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            if error.errno != errno.EADDRINUSE or port is not None:
                poller.cancel()
                raise
            continue
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        listening.port = bound
        return runner, f"http://{address}:{bound}/", poller
    raise AssertionError("unreachable: port 0 always binds")


async def serve(client: KubeClient, namespace: str | None, address: str,
                port: int | None) -> None:  # fmt: skip
    """Until Ctrl-C: the dashboard at its printed URL."""
    runner, url, poller = await start(client, namespace, address, port)
    scope = f"namespace {namespace}" if namespace else "all namespaces"
    print(f"Dashboard for {scope} (context {client.context!r}): {url}  (Ctrl-C stops it)",
          flush=True)  # fmt: skip
    try:
        await asyncio.Event().wait()
    finally:
        poller.cancel()
        await runner.cleanup()
