"""`make demo-cluster`: a whole rollout on one machine, with no Kubernetes and no keys.

An emulated Kubernetes API (kmock, as the operator tests use) with the LLMRollout CRD; the
operator (`llm-rollout-operator`, its own process); three sidecars on its control channel;
a fake OpenAI that speaks the real wire format; app traffic through the official openai SDK;
and `kubectl llmrollout dashboard` (its own process). It applies a rollout that walks
5 -> 25 -> 50 -> 75 -> (promote) -> 100 % real, browns the provider out at 50 % so the
operator rolls back on its own, lets it recover, retries, promotes, and ends. Meanwhile it
prints `kubectl llmrollout get` at every change. Under three minutes; every process it
started is stopped at the end, and on Ctrl-C.

    python examples/demo_cluster.py [--quick]     # --quick: shorter pauses (the test's)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import kmock
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.config import parse_spec  # noqa: E402
from proxy.server.control import ControlClient  # noqa: E402
from proxy.server.serve import Address, Sidecar  # noqa: E402
from rollout_operator.kube import rollout_path  # noqa: E402
from tests.fakes.base import Fault  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.operator.k8s_emulator import Emulator, declare, token_review  # noqa: E402
from tests.operator.k8s_emulator import kubeconfig as k8s_kubeconfig  # noqa: E402

NS, NAME, LABELS = "shop", "marketing-content", {"app": "marketing-api"}
BIN = Path(sys.executable).parent
KEY_ENV = "DEMO_OPENAI_KEY"  # the sidecars' provider key; the fake checks it
BROWNOUT_AT = 50


def strategy(pause: str) -> dict[str, Any]:
    return {
        "steps": [{"setWeight": 5}, {"pause": {"duration": pause}}, {"setWeight": 25},
                  {"pause": {"duration": pause}}, {"setWeight": 50}, {"pause": {"duration": pause}},
                  {"setWeight": 75}, {"pause": {}}, {"setWeight": 100}],
        "analysis": {"interval": "2s", "failureLimit": 2, "minRequests": 3,
                     "metrics": [{"name": "error-rate", "max": 0.05},
                                 {"name": "latency-p95-ms", "max": 1000},
                                 {"name": "cost-per-request-usd", "max": 0.01}]},
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Every process the demo starts, stopped at the end whatever happens."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.started.append((name, process))
        print(f"started {name} (pid {process.pid})", flush=True)
        return process

    def stop(self) -> None:
        """Terminate (then kill) each; a second call finds nothing left to do."""
        for _, process in self.started:
            if process.poll() is None:
                process.terminate()
        while self.started:
            name, process = self.started.pop(0)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            print(f"stopped {name} (pid {process.pid})", flush=True)


def drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Keep a child's output (read in a thread so its pipe never fills)."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())


class Demo:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.processes = Processes()
        self.provider = FakeOpenAI()
        self.sidecars: list[tuple[Sidecar, ControlClient]] = []
        self.counts: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.api: kmock.Server | None = None
        self.printing = asyncio.Lock()  # a command line and its output stay together
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"\n[{time.monotonic() - self.started:5.1f} s] {text}", flush=True)

    async def announce(self, text: str) -> None:
        """A line of the story, never inside another command's output."""
        async with self.printing:
            self.say(f"== {text}")

    async def status(self) -> dict[str, Any]:
        assert self.api is not None
        async with self.api.client.get(rollout_path(NS, NAME)) as response:
            return (await response.json()).get("status") or {}

    async def kubectl(self, *args: str) -> str:
        """`kubectl llmrollout ...` (the plugin's own program), printed as a user types it."""
        async with self.printing:
            self.say(f"$ kubectl llmrollout {' '.join(args)}")
            done = await asyncio.to_thread(
                subprocess.run, [str(BIN / "kubectl-llmrollout"), *args], env=self.env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            print((done.stdout + done.stderr).rstrip(), flush=True)
        return done.stdout

    async def wait(self, what: str, check: Any, within: float) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            status = await self.status()
            if check(status):
                return status
            await asyncio.sleep(0.25)
        raise SystemExit(f"demo: {what} did not happen within {within:.0f} s; last status "
                         f"{json.dumps(await self.status())[:600]}")  # fmt: skip

    async def watch(self) -> None:
        """`kubectl llmrollout get` each time the phase, weight or step changes."""
        shown: tuple[Any, ...] = ()
        while True:
            s = await self.status()
            seen = (s.get("phase"), s.get("realWeight"), s.get("currentStepIndex"))
            if s and seen != shown:
                shown = seen
                await self.kubectl("get", NAME, "-n", NS)
            await asyncio.sleep(0.5)

    async def traffic(self, rps: float) -> None:
        """The app: chat completions through each sidecar with the official openai SDK."""
        clients = [openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{s.data_port}/v1",
                                      api_key="app-has-no-key", max_retries=0)
                   for s, _ in self.sidecars]  # fmt: skip

        async def one(client: openai.AsyncOpenAI) -> None:
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "A tagline?"}]
                )
                backend = raw.headers.get("x-llm-backend", "?")
            except openai.APIError as error:
                backend = f"error {type(error).__name__}"
            self.counts[backend] = self.counts.get(backend, 0) + 1

        tasks: set[asyncio.Task[None]] = set()
        try:
            for index in range(10**9):
                task = asyncio.create_task(one(clients[index % len(clients)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(1 / rps)
        finally:
            for task in tasks:
                task.cancel()
            for client in clients:
                await client.close()

    async def start_sidecars(self, control: str, tmp: Path) -> None:
        assert self.api is not None
        for index in range(3):
            pod = f"marketing-api-{index}"
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "namespace": NS, "labels": LABELS}}  # fmt: skip
            async with self.api.client.post(f"/api/v1/namespaces/{NS}/pods", json=body):
                pass
            token = tmp / f"{pod}.token"
            token.write_text(f"token-{pod}\n")
            sidecar = Sidecar(parse_spec({}), None, listen=Address("127.0.0.1", 0),
                              admin_listen=Address("127.0.0.1", 0))  # fmt: skip
            await sidecar.start()
            client = ControlClient(sidecar.runtime, control, f"{NS}/{NAME}", token, sidecar=pod,
                                   poll_seconds=5, min_stats_interval=0.5)  # fmt: skip
            await client.start()
            self.sidecars.append((sidecar, client))
        print(f"started 3 sidecars on the control channel {control}", flush=True)

    async def run(self, tmp: Path) -> None:
        pause = "1s" if self.quick else "8s"
        async with Emulator() as k8s, kmock.Server(k8s) as api:
            self.api = api
            declare(k8s)
            k8s["post /apis/authentication.k8s.io/v1/tokenreviews"] << token_review(k8s, NS)
            kubeconfig = tmp / "kubeconfig"
            kubeconfig.write_text(k8s_kubeconfig(str(api.url), "you", "demo-token", NS, "demo"))
            self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
            print(f"emulated Kubernetes API at {api.url} (KUBECONFIG={kubeconfig})", flush=True)
            await self.provider.start()
            os.environ[KEY_ENV] = self.provider.key
            print(f"fake OpenAI at {self.provider.base}/v1", flush=True)

            port, logs = free_port(), []
            operator = self.processes.start("operator", [
                str(BIN / "llm-rollout-operator"),  # the whole (emulated) cluster
                "--control-listen", f"127.0.0.1:{port}", "--log-level", "WARNING",
            ], self.env)  # fmt: skip
            threading.Thread(target=drain, args=(operator, logs), daemon=True).start()
            board = self.processes.start("dashboard", [
                str(BIN / "kubectl-llmrollout"), "dashboard", "-n", NS,
            ], self.env)  # fmt: skip
            assert board.stdout is not None
            url = (await asyncio.to_thread(board.stdout.readline)).strip()
            threading.Thread(target=drain, args=(board, []), daemon=True).start()
            print(url, flush=True)

            spec = {"selector": {"matchLabels": LABELS},
                    "providers": [{"name": "openai-primary", "type": "openai",
                                   "baseURL": f"{self.provider.base}/v1",
                                   "apiKey": {"env": KEY_ENV}}],
                    "fallback": ["openai-primary", "mock"], "budget": {"dailyUSD": "2.00"},
                    # A brownout opens the sidecars' breakers; short, so recovery shows soon.
                    "circuitBreaker": {"openSeconds": 3},
                    "strategy": strategy(pause)}  # fmt: skip
            body = {"apiVersion": "llm-rollout.io/v1alpha1", "kind": "LLMRollout",
                    "metadata": {"name": NAME, "namespace": NS}, "spec": spec}  # fmt: skip
            async with api.client.post(rollout_path(NS), json=body) as created:
                assert created.status < 300, await created.text()
            self.say(
                f"applied LLMRollout {NS}/{NAME}: 5 -> 25 -> 50 -> 75 % with {pause} "
                "pauses (each also needs a passing analysis), a hand pause, then 100 %"
            )
            await self.wait("the operator's first status", lambda s: "phase" in s, 30)
            await self.start_sidecars(f"http://127.0.0.1:{port}", tmp)
            traffic = asyncio.create_task(self.traffic(rps=40))
            watcher = asyncio.create_task(self.watch())
            try:
                await self.story()
            finally:
                for task in (traffic, watcher):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for sidecar, client in self.sidecars:
                    await client.stop()
                    await sidecar.stop()
                await self.provider.stop()
                # Before the API server goes: the operator's watches would hold it open.
                await asyncio.to_thread(self.processes.stop)
                if operator.poll() is not None:
                    print("\n".join(logs[-20:]))

    async def story(self) -> None:
        await self.wait(f"{BROWNOUT_AT} % real", lambda s: s.get("realWeight") == BROWNOUT_AT, 90)
        self.say(
            f"== provider brownout at {BROWNOUT_AT} %: half of OpenAI's answers are 503, "
            "the rest take 1.5 s"
        )
        self.provider.faults.extend([Fault(status=503), Fault(first_byte_delay=1.5)] * 50_000)
        status = await self.wait("the automatic rollback", lambda s: s["phase"] == "Degraded", 60)
        await self.announce(f"rolled back on its own: {status['message']}")
        self.provider.faults.clear()
        await self.announce("the provider recovers (breakers close after 3 s); then retry")
        await asyncio.sleep(5)
        await self.kubectl("retry", NAME, "-n", NS)
        await self.wait("the hand pause at 75 %", lambda s: s.get("realWeight") == 75
                        and s["phase"] == "Paused", 90)  # fmt: skip
        await self.kubectl("promote", NAME, "-n", NS)
        await self.wait("Healthy at 100 %", lambda s: s["phase"] == "Healthy", 30)
        await self.kubectl("status", NAME, "-n", NS, "--timeout", "10s")
        await asyncio.sleep(1)
        served = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        self.say(
            f"== done: promoted, rolled back, recovered, promoted. App requests by "
            f"backend: {served}"
        )


def main() -> int:
    demo = Demo(quick="--quick" in sys.argv[1:])
    # Ctrl-C (SIGINT) and SIGTERM end the story the same way: through the cleanup below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="llm-rollout-demo-"))
    started = time.monotonic()
    try:
        asyncio.run(demo.run(tmp))
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", flush=True)
        return 130
    finally:
        demo.processes.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"demo-cluster: {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
