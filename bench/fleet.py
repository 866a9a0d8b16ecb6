"""`make bench-fleet`: one operator, thousands of simulated sidecars on its control channel.

    python -m bench.fleet --sidecars 100 1000 3000      # what `make bench-fleet` runs
    python -m bench.fleet --sidecars 1000 --no-write    # one size, print only

For each size: an emulated Kubernetes API in its own process (`bench.fleet_api`),
the real operator (`llm-rollout-operator`, kopf, default `--tick 1`) in its own
process with its real TokenReview authenticator, and N `SimSidecar`s in this one
(`bench.fleet_client`). Then, in order:

1. *join*: all N start at once; time until every one holds a config and the
   operator's status counts N connected, and the operator's CPU for it;
2. *steady*: `--steady` seconds of long-polls, stats pushes and budget calls at
   their cadences: operator CPU per second;
3. *stats burst*: every sidecar pushes one window at once (nothing else runs): the
   operator's CPU per push, and the push's latency as the sidecars see it;
4. *propagation*: `--changes` merge-patches of ``spec.traffic.realWeight`` (as
   `kubectl apply` does); for each, the time from the PATCH to each sidecar having
   the new weight: p50 and p99 over all sidecars and changes, and per change the time
   until *all* have it;
5. *fairness*: what each sidecar was granted over the run (every one asks for a new
   slice every `--budget-interval` s and spends all it holds): Jain's index, how many
   got nothing, the total against the cap.

Operator RSS is VmRSS at the end and VmHWM (peak). Writes `docs/scaling.md`'s
measured section and `docs/img/fleet.svg` (with ``--write``, the default).
Times are wall clock on a shared machine: the fleet, the emulator and the operator
share its CPUs, so the fleet's own delay is inside every propagation figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE, STDOUT
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench import machine
from bench.fleet_api import NS
from bench.fleet_client import Counters, SimSidecar
from bench.fleet_report import plot, table
from bench.procs import cpu_seconds, free_port
from bench.sections import replace_section
from rollout_operator.kube import rollout_path
from rollout_operator.reconcile import COMMAND_ANNOTATION

NAME = "fleet"
LABELS = {"app": "fleet"}
DAILY_CAP = Decimal("1000")
BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parents[1] / "docs"


@dataclass
class Result:
    """One fleet size's figures (seconds, CPU-seconds, MB, USD)."""

    sidecars: int
    join_seconds: float = 0.0
    join_cpu: float = 0.0
    steady_cpu_per_second: float = 0.0
    steady_pushes_per_second: float = 0.0
    push_cpu_ms: float = 0.0
    push_p50_ms: float = 0.0
    push_p99_ms: float = 0.0
    propagation: list[float] = field(default_factory=list)  # every sidecar, every change
    to_all: list[float] = field(default_factory=list)  # per change: until the last one had it
    change_cpu: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    jain: float = 0.0
    granted_min: float = 0.0
    granted_median: float = 0.0
    granted_max: float = 0.0
    got_nothing: int = 0
    granted_total: float = 0.0
    versions_at_join: int = 0
    abort: list[float] = field(default_factory=list)  # per sidecar: abort until weight 0
    missed: int = 0  # (sidecar, change) pairs that did not get the change within --timeout
    errors: dict[str, int] = field(default_factory=dict)

    def quantile(self, samples: list[float], q: float) -> float:
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return self.quantile(self.propagation, 0.5)

    @property
    def p99(self) -> float:
        return self.quantile(self.propagation, 0.99)


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures["VmRSS"], figures["VmHWM"]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one holds everything."""
    total, squares = sum(values), sum(v * v for v in values)
    return 1.0 if squares == 0 else total * total / (len(values) * squares)


def rollout_spec() -> dict[str, Any]:
    """A rollout with a cluster rate limit (each sidecar's share changes as they join)
    and a daily cap (slices), no strategy: the weight is the spec's."""
    return {
        "selector": {"matchLabels": LABELS},
        "providers": [{"name": "openai-primary", "type": "openai",
                       "baseURL": "http://127.0.0.1:9/v1",
                       "rateLimit": {"requestsPerMinute": 600000}}],
        "fallback": ["openai-primary", "mock"],
        "traffic": {"realWeight": 0},
        "budget": {"dailyUSD": str(DAILY_CAP)},
    }  # fmt: skip


class Fleet:
    """The three processes' worth of one run, and the calls the bench makes to them."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.api_proc: asyncio.subprocess.Process | None = None
        self.operator: asyncio.subprocess.Process | None = None
        self.api_url = ""
        self.control_port = 0
        self.env: dict[str, str] = {}
        self.http: aiohttp.ClientSession | None = None
        self.log = tmp / "operator.log"

    async def start(self, pods: int) -> None:
        self.api_proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.fleet_api", stdin=PIPE, stdout=PIPE
        )
        assert self.api_proc.stdout is not None
        self.api_url = (await self.api_proc.stdout.readline()).decode().strip()
        if not self.api_url.startswith("http"):
            raise RuntimeError(f"the emulated API did not start: {self.api_url!r}")
        kubeconfig = self.tmp / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fleet",
            "clusters": [{"name": "kmock", "cluster": {"server": self.api_url}}],
            "users": [{"name": "bench", "user": {"token": "bench-token"}}],
            "contexts": [{"name": "fleet", "context": {"cluster": "kmock", "user": "bench",
                                                       "namespace": NS}}],
        }))  # fmt: skip
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        semaphore = asyncio.Semaphore(32)

        async def pod(index: int) -> None:
            meta = {"name": f"app-{index}", "namespace": NS, "labels": LABELS}
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
            async with semaphore:
                await self.api("POST", f"/api/v1/namespaces/{NS}/pods", body)

        await asyncio.gather(*(pod(i) for i in range(pods)))
        self.control_port = free_port()
        with self.log.open("wb") as out:
            self.operator = await asyncio.create_subprocess_exec(
                str(BIN / "llm-rollout-operator"), "--log-level", "WARNING",
                "--control-listen", f"127.0.0.1:{self.control_port}",
                env=self.env, stdout=out, stderr=STDOUT,
            )  # fmt: skip
        await self.api("POST", rollout_path(NS), {
            "apiVersion": "llm-rollout.io/v1alpha1", "kind": "LLMRollout",
            "metadata": {"name": NAME, "namespace": NS}, "spec": rollout_spec()})  # fmt: skip
        await self.until(self.control_ready, 30, "the operator's control channel")

    async def api(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        assert self.http is not None
        headers = {"Authorization": "Bearer bench-token"}
        if ctype:
            headers["Content-Type"] = ctype
        async with self.http.request(method, self.api_url + path, json=body,
                                     headers=headers) as response:  # fmt: skip
            text = await response.text()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {text[:300]}")
            return json.loads(text)

    async def status(self) -> dict[str, Any]:
        return (await self.api("GET", rollout_path(NS, NAME))).get("status") or {}

    async def control_ready(self) -> bool:
        assert self.http is not None
        assert self.operator is not None
        if self.operator.returncode is not None:
            raise RuntimeError(f"the operator exited: {self.log.read_text()[-2000:]}")
        url = f"http://127.0.0.1:{self.control_port}/v1/namespaces/{NS}/llmrollouts/{NAME}/config"
        try:
            async with self.http.get(url, headers={"Authorization": "Bearer token-app-0"},
                                     params={"timeout": "0"}) as response:  # fmt: skip
                return response.status == 200
        except aiohttp.ClientError:
            return False

    @staticmethod
    async def until(check: Any, within: float, what: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            if await check():
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{what} not ready within {within:.0f} s")

    def cpu(self) -> float:
        assert self.operator is not None
        return cpu_seconds(self.operator.pid)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.operator is not None:
            self.operator.terminate()
            await _reap(self.operator, 20)
        if self.api_proc is not None:
            assert self.api_proc.stdin is not None
            self.api_proc.stdin.close()
            await _reap(self.api_proc, 10)


async def _reap(process: asyncio.subprocess.Process, within: float) -> None:
    """Wait for a child asked to stop; kill it when it takes longer than `within` s."""
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()


async def measure(size: int, args: argparse.Namespace) -> Result:
    result = Result(sidecars=size)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        fleet = Fleet(args, Path(tmp))
        counters = Counters()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sims: list[SimSidecar] = []
        try:
            await fleet.start(size)
            base = f"http://127.0.0.1:{fleet.control_port}/v1/namespaces/{NS}/llmrollouts/{NAME}"
            sims = [SimSidecar(session, base, f"app-{i}", counters, args.stats_interval,
                               args.budget_interval) for i in range(size)]  # fmt: skip
            cpu0 = fleet.cpu()
            for sim in sims:
                sim.start()

            async def joined() -> bool:
                if any(sim.version == 0 for sim in sims):
                    return False
                return int((await fleet.status()).get("sidecars", {}).get("connected", 0)) == size

            result.join_seconds = await fleet.until(joined, args.timeout, f"{size} sidecars")
            result.join_cpu = fleet.cpu() - cpu0
            result.versions_at_join = max(sim.version for sim in sims)
            await quiet(sims)
            print(f"  {size}: joined in {result.join_seconds:.1f} s "
                  f"({result.versions_at_join} config versions)", flush=True)  # fmt: skip

            pushes0, cpu0, at0 = counters.pushes, fleet.cpu(), time.monotonic()
            await asyncio.sleep(args.steady)
            span = time.monotonic() - at0
            result.steady_cpu_per_second = (fleet.cpu() - cpu0) / span
            result.steady_pushes_per_second = (counters.pushes - pushes0) / span

            for sim in sims:
                sim.stats_paused = True
            await asyncio.sleep(1)
            counters.push_seconds.clear()
            cpu0 = fleet.cpu()
            took = await asyncio.gather(*(sim.push() for sim in sims))
            result.push_cpu_ms = 1000 * (fleet.cpu() - cpu0) / max(1, sum(took))
            result.push_p50_ms = 1000 * result.quantile(counters.push_seconds, 0.5)
            result.push_p99_ms = 1000 * result.quantile(counters.push_seconds, 0.99)
            for sim in sims:
                sim.stats_paused = False

            for change in range(args.changes):
                weight = 10 + 10 * change
                await asyncio.sleep(1.0)
                cpu0, patched = fleet.cpu(), time.monotonic()
                await fleet.api("PATCH", rollout_path(NS, NAME),
                                {"spec": {"traffic": {"realWeight": weight}}},
                                "application/merge-patch+json")  # fmt: skip
                with contextlib.suppress(RuntimeError):  # counted below as missed
                    await fleet.until(lambda w=weight: _all_at(sims, w), args.timeout,
                                      f"weight {weight} at every sidecar")  # fmt: skip
                missed = [sim for sim in sims if weight not in sim.weight_at]
                result.missed += len(missed)
                for sim in missed:  # counted as arriving at the timeout: a lower bound
                    sim.weight_at[weight] = patched + args.timeout
                times = [sim.weight_at[weight] - patched for sim in sims]
                result.propagation += times
                result.to_all.append(max(times))
                result.change_cpu.append(fleet.cpu() - cpu0)
            await asyncio.sleep(1.0)
            result.abort = await _abort(fleet, sims, args.timeout)
            assert fleet.operator is not None
            result.rss_mb, result.hwm_mb = memory_mb(fleet.operator.pid)
        finally:
            for sim in sims:
                await sim.stop()
            await session.close()
            await fleet.stop()
    granted = [float(sim.granted) for sim in sims]
    result.jain = jain(granted)
    result.granted_min, result.granted_max = min(granted), max(granted)
    result.granted_median = statistics.median(granted)
    result.got_nothing = sum(1 for g in granted if g == 0)
    result.granted_total = sum(granted)
    result.errors = {"poll": counters.poll_errors, "push": counters.push_failures,
                     "allowance": counters.allowance_failures}  # fmt: skip
    return result


async def _abort(fleet: Fleet, sims: list[SimSidecar], within: float) -> list[float]:
    """Seconds from `kubectl llmrollout abort`'s annotation (what `steer.command` writes)
    until each sidecar holds weight 0 (all of its traffic to the mock)."""
    for sim in sims:
        sim.weight_at.pop(0, None)  # 0 was the weight at join: time its return
    patched = time.monotonic()
    annotation = {COMMAND_ANNOTATION: f"{time.time_ns()} abort"}
    await fleet.api("PATCH", rollout_path(NS, NAME), {"metadata": {"annotations": annotation}},
                    "application/merge-patch+json")  # fmt: skip
    with contextlib.suppress(RuntimeError):  # a sidecar that never got it counts at timeout
        await fleet.until(lambda: _all_at(sims, 0), within, "the abort at every sidecar")
    return [sim.weight_at.get(0, patched + within) - patched for sim in sims]


async def _all_at(sims: list[SimSidecar], weight: int) -> bool:
    return all(weight in sim.weight_at for sim in sims)


async def quiet(sims: list[SimSidecar], still: float = 3.0, within: float = 120) -> None:
    """Wait until no sidecar has seen a new config version for `still` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        newest = max(max(sim.arrived.values(), default=0.0) for sim in sims)
        if time.monotonic() - newest >= still:
            return
        await asyncio.sleep(0.2)


def line(result: Result) -> str:
    return (
        f"{result.sidecars:>6} sidecars: join {result.join_seconds:5.1f} s "
        f"({result.join_cpu:5.1f} CPU-s, {result.versions_at_join} versions) | propagation "
        f"p50 {result.p50 * 1000:6.0f} ms p99 {result.p99 * 1000:6.0f} ms, to all "
        f"max {max(result.to_all) * 1000:6.0f} ms | operator "
        f"{result.steady_cpu_per_second * 100:4.0f} % CPU steady, RSS {result.rss_mb:5.0f} MB "
        f"(peak {result.hwm_mb:5.0f}) | push {result.push_cpu_ms:.2f} CPU-ms, "
        f"p50 {result.push_p50_ms:.0f} ms p99 {result.push_p99_ms:.0f} ms | fairness "
        f"Jain {result.jain:.2f}, nothing {result.got_nothing}, granted "
        f"{result.granted_total:.0f}/{DAILY_CAP} USD | errors {result.errors}, "
        f"changes missed {result.missed} | abort p50 "
        f"{result.quantile(result.abort, 0.5) * 1000:.0f} ms p99 "
        f"{result.quantile(result.abort, 0.99) * 1000:.0f} ms"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sidecars", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of steady state")
    parser.add_argument("--changes", type=int, default=5, help="weight changes to time")
    parser.add_argument("--stats-interval", type=float, default=10.0,
                        help="seconds between a sidecar's stats pushes (default %(default)s: "
                        "the cadence of a rollout analysed every 20 s or more)")  # fmt: skip
    parser.add_argument(
        "--budget-interval",
        type=float,
        default=5.0,
        help="seconds between a sidecar's slice requests",
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="print only; do not write docs/scaling.md")  # fmt: skip
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> list[Result]:
    results = []
    load = machine.OtherLoad()
    for size in args.sidecars:
        print(f"fleet of {size} simulated sidecars ...", flush=True)
        try:
            result = await measure(size, args)
        except RuntimeError as error:  # one size too big for this machine: say so, go on
            print(f"  {size}: not measured: {error}", flush=True)
            continue
        print(line(result), flush=True)
        results.append(result)
    figures = {**machine.describe(), **load.figures()}
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in figures.items()))
    if args.write:
        write(results, args, figures)
    return results


def write(results: list[Result], args: argparse.Namespace, figures: dict[str, str]) -> None:
    """The measured section of docs/scaling.md (the rest is prose) and docs/img/fleet.svg."""
    text = "\n".join([
        f"Measured by `make bench-fleet` (`python -m bench.fleet --sidecars "
        f"{' '.join(map(str, args.sidecars))}`), stats every {args.stats_interval:g} s, a "
        f"slice asked for every {args.budget_interval:g} s, {args.changes} weight changes, "
        f"{args.steady:g} s steady:", "",
        table(results, str(DAILY_CAP)), "",
        "![propagation and operator RSS over the fleet size](img/fleet.svg)", "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in figures.items()) + ".",
    ])  # fmt: skip
    doc = DOCS / "scaling.md"
    current = doc.read_text(encoding="utf-8") if doc.exists() else "# Scaling\n"
    doc.write_text(replace_section(current, "fleet", text), encoding="utf-8")
    (DOCS / "img" / "fleet.svg").write_text(plot(results), encoding="utf-8")
    print(f"wrote {doc} and {DOCS / 'img' / 'fleet.svg'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
