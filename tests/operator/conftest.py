"""A Kubernetes API (kmock emulator), the real operator under kopf, real sidecars, a fake provider.

Everything runs in-process on 127.0.0.1. The operator authenticates sidecars with
its real TokenReview authenticator; the emulator answers TokenReviews for tokens
``token-<pod>`` and holds the pods with their labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import openai
import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))

from k8s_emulator import Emulator, declare, token_review
from k8s_emulator import kubeconfig as k8s_kubeconfig

from proxy.config import parse_spec
from proxy.server.control import ControlClient
from proxy.server.serve import Address, Sidecar
from rollout_operator import plugin
from rollout_operator.cli import Operator
from rollout_operator.dashboard import server
from rollout_operator.kube import KubeClient, rollout_path

NS = "shop"
LABELS = {"app": "marketing-api"}


class FakeOpenAI:
    """Speaks OpenAI chat completions; `failing` turns every answer into a 503 error."""

    def __init__(self) -> None:
        self.failing = False
        self.calls = 0  # chat completions asked for, answered or failed
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        if self.failing:
            error = {"error": {"message": "upstream overloaded", "type": "server_error",
                               "param": None, "code": None}}  # fmt: skip
            return web.json_response(error, status=503)
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "real answer"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        })  # fmt: skip

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Cluster:
    def __init__(self, k8s: Emulator, server: kmock.Server, kubeconfig: Path, tmp: Path) -> None:
        self.k8s, self.server, self.kubeconfig, self.tmp = k8s, server, kubeconfig, tmp
        self.operator: Operator | None = None
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self.sidecars: list[tuple[Sidecar, ControlClient]] = []
        self.provider = FakeOpenAI()

    # --- the API server ------------------------------------------------------------------
    async def api(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        headers = {"Authorization": "Bearer operator-token"}  # the kubeconfig's token
        if ctype:
            headers["Content-Type"] = ctype
        async with self.server.client.request(method, path, json=body, headers=headers) as r:
            assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
            return await r.json()

    async def apply(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "llm-rollout.io/v1alpha1", "kind": "LLMRollout",
                "metadata": {"name": name, "namespace": NS}, "spec": spec}  # fmt: skip
        await self.api("POST", rollout_path(NS), body)

    async def get(self, name: str) -> dict[str, Any]:
        return await self.api("GET", rollout_path(NS, name))  # type: ignore[no-any-return]

    async def status(self, name: str) -> dict[str, Any]:
        return (await self.get(name)).get("status") or {}

    async def events(self) -> list[dict[str, Any]]:
        return (await self.api("GET", f"/api/v1/namespaces/{NS}/events"))["items"]  # type: ignore[no-any-return]

    async def wait_event(self, reason: str, within: float = 10) -> dict[str, Any]:
        """The first Event with `reason` (kopf posts Events in the background)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in await self.events():
                if event["reason"] == reason:
                    return event
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {reason} Event; got {[e['reason'] for e in await self.events()]}")

    async def wait_status(
        self, name: str, check: Callable[[dict[str, Any]], bool], within: float = 20
    ) -> dict[str, Any]:
        """Poll until `check(status)`; a field the operator has not written yet
        (KeyError) means "not yet", as an absent value would to a person watching."""
        deadline = time.monotonic() + within
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = await self.status(name)
            try:
                if check(status):
                    return status
            except KeyError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"status never matched; last: {json.dumps(status)[:1500]}")

    async def plugin(self, *args: str) -> int:
        argv = ["--kubeconfig", str(self.kubeconfig), "-n", NS, *args]
        return await asyncio.to_thread(plugin.main, argv)

    # --- the operator --------------------------------------------------------------------
    async def start_operator(self, port: int = 0, tick: float = 0.25) -> Operator:
        """The operator in its own thread and event loop, as in its own process.

        kopf cancels every task created after it started when it stops; its own loop
        keeps the test's tasks (sidecars, traffic) out of that sweep.
        """
        self.operator = operator = Operator(control_host="127.0.0.1", control_port=port, tick=tick,
                                            max_poll_seconds=5, sidecar_ttl=5)  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(operator.run(self._stop),))
        self._thread.start()
        deadline = time.monotonic() + 20
        while not operator.hub.started.is_set():
            assert time.monotonic() < deadline, "the operator did not start its control channel"
            await asyncio.sleep(0.05)
        return operator

    async def stop_operator(self) -> None:
        assert self._stop is not None
        assert self._thread is not None
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)
        assert not self._thread.is_alive(), "the operator did not stop"
        self._thread = None

    # --- sidecars ------------------------------------------------------------------------
    async def add_pod(self, pod: str, labels: dict[str, str]) -> Path:
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": NS, "labels": labels}}  # fmt: skip
        await self.api("POST", f"/api/v1/namespaces/{NS}/pods", body)
        token = self.tmp / f"{pod}.token"
        token.write_text(f"token-{pod}\n")
        return token

    async def start_sidecars(self, name: str, count: int, url: str = "") -> list[Sidecar]:
        """`count` sidecars polling `url` (default: the in-process operator)."""
        if not url:
            assert self.operator is not None
            url = f"http://127.0.0.1:{self.operator.control_port}"
        started = []
        for _ in range(count):
            pod = f"app-{len(self.sidecars)}"
            token = await self.add_pod(pod, LABELS)
            sidecar = Sidecar(parse_spec({}), None, listen=Address("127.0.0.1", 0),
                              admin_listen=Address("127.0.0.1", 0))  # fmt: skip
            await sidecar.start()
            client = ControlClient(sidecar.runtime, url, f"{NS}/{name}", token, sidecar=pod,
                                   poll_seconds=5, min_stats_interval=0.25)  # fmt: skip
            await client.start()
            self.sidecars.append((sidecar, client))
            started.append(sidecar)
        return started

    async def call(self, pod: str, name: str, verb: str, body: Any) -> tuple[int, Any]:
        """A control-channel POST as the sidecar of `pod`."""
        import aiohttp

        assert self.operator is not None
        url = (f"http://127.0.0.1:{self.operator.control_port}/v1/namespaces/{NS}"
               f"/llmrollouts/{name}/{verb}")  # fmt: skip
        headers = {"Authorization": f"Bearer token-{pod}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            return response.status, await response.json(content_type=None)

    def weights(self) -> list[int]:
        return [s.runtime.snapshot.spec.traffic.real_weight for s, _ in self.sidecars]

    async def wait_weights(self, weight: int, within: float = 10) -> float:
        """Seconds until every sidecar applies `weight`."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.weights() == [weight] * len(self.sidecars):
                return time.monotonic() - started
            await asyncio.sleep(0.01)
        raise AssertionError(f"sidecars at {self.weights()}, expected all at {weight}")

    @contextlib.asynccontextmanager
    async def traffic(self, rps: float = 40) -> AsyncIterator[dict[str, int]]:
        """Requests through every sidecar with the official OpenAI SDK, counted by backend."""
        counts: dict[str, int] = {}
        clients = [
            openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{s.data_port}/v1", api_key="app-key", max_retries=0
            )
            for s, _ in self.sidecars
        ]

        async def one(client: openai.AsyncOpenAI) -> None:
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                backend = raw.headers.get("x-llm-backend", "?")
            except openai.APIStatusError as error:
                backend = f"{error.response.headers.get('x-llm-backend', '?')}:{error.status_code}"
            counts[backend] = counts.get(backend, 0) + 1

        in_flight: set[asyncio.Task[None]] = set()

        async def pump() -> None:
            index = 0
            while True:
                request = asyncio.create_task(one(clients[index % len(clients)]))
                in_flight.add(request)
                request.add_done_callback(in_flight.discard)
                index += 1
                await asyncio.sleep(1 / rps)

        task = asyncio.create_task(pump())
        try:
            yield counts
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.gather(*in_flight, return_exceptions=True)
            for client in clients:
                await client.close()

    async def close(self) -> None:
        for sidecar, client in self.sidecars:
            await client.stop()
            await sidecar.stop()
        if self._thread is not None:
            await self.stop_operator()
        await self.provider.stop()


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with Emulator() as k8s, kmock.Server(k8s) as server:
        declare(k8s)
        k8s["post /apis/authentication.k8s.io/v1/tokenreviews"] << token_review(k8s, NS)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            k8s_kubeconfig(str(server.url), "operator", "operator-token", NS, "test")
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        cluster = Cluster(k8s, server, kubeconfig, tmp_path)
        await cluster.provider.start()
        try:
            yield cluster
        finally:
            await cluster.close()


@contextlib.asynccontextmanager
async def dashboard(kubeconfig: Path) -> AsyncIterator[str]:
    """`kubectl llmrollout dashboard`'s server on a free loopback port, logged in with
    `kubeconfig`, watching the test namespace; yields its URL."""
    client = await KubeClient.connect(str(kubeconfig))
    runner, url, poller = await server.start(client, NS, "127.0.0.1", 0)
    try:
        yield url
    finally:
        poller.cancel()
        await runner.cleanup()
        await client.close()


def provider_spec(cluster: Cluster, **extra: Any) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": LABELS},
        "providers": [{"name": "openai-primary", "type": "openai",
                       "baseURL": f"http://127.0.0.1:{cluster.provider.port}/v1"}],
        "fallback": ["openai-primary", "mock"],
        **extra,
    }  # fmt: skip
