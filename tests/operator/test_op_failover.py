"""Two operator replicas under kopf peering: SIGKILL the active one mid-rollout.

Both replicas run as real processes (`python -m rollout_operator --peering ...`) against
the emulated API; the sidecars reach them through a stand-in for the control Service
that, as Kubernetes does with readiness probes, sends each new connection only to a
replica whose `/readyz` answers 200. What a person running the rollout would check:

- exactly one replica is ready at a time, and the standby refuses the control channel;
- after the active one is killed, the standby takes over within the peering lifetime
  (measured and printed);
- the step, the weight, the analysis history and the budget spent are what they were
  (history and spend only grow), and analysis goes on;
- every sidecar kept serving, never at a wrong weight, and none lost a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import kmock
from conftest import NS, Cluster, provider_spec

LIFETIME = 5  # --peering-lifetime: the longest a failover may take, plus polling
PEERING = "llm-rollout-test"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    def __init__(self, cluster: Cluster, index: int) -> None:
        self.port = free_port()
        self.log = cluster.tmp / f"operator-{index}.log"
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "POD_NAME": f"op-{index}"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rollout_operator", "--peering", PEERING,
             "--peering-lifetime", str(LIFETIME), "--control-listen", f"127.0.0.1:{self.port}",
             "--tick", "0.25", "--log-level", "DEBUG"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class Service:
    """The control Service: each new connection goes to a ready replica, or is refused."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.ready: list[Replica] = []
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        probe = asyncio.create_task(self._probe())
        try:
            yield self
        finally:
            probe.cancel()
            server.close()

    async def _probe(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                self.ready = [r for r in self.replicas if await r.ready(session)]
                await asyncio.sleep(0.2)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.ready:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.ready[0].port)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_standby_takes_over_from_a_killed_active_replica_losing_nothing(
    cluster: Cluster,
) -> None:
    cluster.k8s.resources["kopf.dev/v1/clusterkopfpeerings"] = kmock.ResourceInfo(
        namespaced=False, kind="ClusterKopfPeering", singular="clusterkopfpeering"
    )
    await cluster.api("POST", "/apis/kopf.dev/v1/clusterkopfpeerings",
                      {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                       "metadata": {"name": PEERING}})  # fmt: skip
    replicas = [Replica(cluster, 0), Replica(cluster, 1)]
    try:
        async with Service(replicas).running() as service:
            await _failover(cluster, service, replicas)
    finally:
        for replica in replicas:
            replica.kill()


async def _failover(cluster: Cluster, service: Service, replicas: list[Replica]) -> None:
    deadline = time.monotonic() + 30
    while len(service.ready) != 1:
        assert time.monotonic() < deadline, _logs(replicas, "no single ready replica")
        await asyncio.sleep(0.1)
    active = service.ready[0]
    standby = next(r for r in replicas if r is not active)

    # The standby refuses the control channel (and closes), whatever the rollout.
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{standby.port}/v1/namespaces/{NS}/llmrollouts/m/config",
            headers={"Authorization": "Bearer token-x"},
        ) as refused,  # fmt: skip
    ):
        assert refused.status == 503
        assert "standby" in (await refused.json())["error"]

    analysis = {"interval": "1s", "minRequests": 1,
                "metrics": [{"name": "error-rate", "max": 0.5}]}  # fmt: skip
    steps = [{"setWeight": 25}, {"pause": {"duration": "10m"}}, {"setWeight": 50}]
    spec = provider_spec(cluster, strategy={"steps": steps, "analysis": analysis},
                         budget={"dailyUSD": "10.00"})  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 3, url=f"http://127.0.0.1:{service.port}")
    await cluster.wait_weights(25, within=20)

    seen_weights: set[int] = set()

    async def watch_weights() -> None:
        while True:
            seen_weights.update(cluster.weights())
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_weights())
    async with cluster.traffic(rps=30) as counts:
        before = await cluster.wait_status(
            "marketing",
            lambda s: len(s["history"]) >= 3 and Decimal(s["budget"]["spentUSD"]) > 0,
            within=30,
        )
        killed_at = time.monotonic()
        active.kill()
        while service.ready != [standby]:
            assert time.monotonic() - killed_at < LIFETIME + 15, _logs(replicas, "no takeover")
            await asyncio.sleep(0.05)
        takeover = time.monotonic() - killed_at
        after = await cluster.wait_status(
            "marketing", lambda s: len(s["history"]) > len(before["history"]) + 2, within=30
        )
        resumed = time.monotonic() - killed_at
    watcher.cancel()
    print(f"\nfailover: standby ready {takeover:.1f} s after SIGKILL of the active replica, "
          f"analysing again {resumed:.1f} s after (peering lifetime {LIFETIME} s); "
          f"requests by backend {counts}")  # fmt: skip

    assert takeover <= LIFETIME + 3
    for field in ("phase", "currentStepIndex", "realWeight"):
        assert after[field] == before[field], field
    assert after["history"][: len(before["history"])] == before["history"]
    assert Decimal(after["budget"]["spentUSD"]) >= Decimal(before["budget"]["spentUSD"])
    assert seen_weights == {25}, f"a sidecar served at {seen_weights}"
    assert not [backend for backend in counts if ":" in backend], counts  # no failed request
    assert sum(counts.values()) > 100


def _logs(replicas: list[Replica], what: str) -> str:
    tails = [r.log.read_text()[-3000:] for r in replicas]
    return f"{what}\n" + "\n---\n".join(tails)
