"""`make bench-peers`: the sidecar next to its peers, under the same load, in one run.

Five targets answer the same chat completion, each in its own process(es), one after
the other, with the same wrk load and CPU placement (`bench.procs`):

| target | what |
|---|---|
| direct | the fake upstream itself (`bench.upstream`) |
| aiohttp passthrough | the least an aiohttp proxy does (`bench.passthrough`): the floor |
| llm-rollout | the sidecar, all traffic real to the fake upstream |
| Portkey | the Portkey AI gateway (npm `@portkey-ai/gateway`), routed by its headers |
| LiteLLM | the LiteLLM proxy (PyPI `litellm[proxy]`), one worker, its own venv |

The peers are installed on first use into `.cache/peers/` (pinned below; LiteLLM in a
virtual environment of its own, Portkey with npm), never into the project's venv.
Figures: added p50 with one client (target minus direct) and its ratio to the
passthrough's added p50; throughput with 8 clients and the sidecar's multiple of each
peer's; CPU time per request of the target's processes. Each figure is the median over
rounds. The results replace the "Peers" section of docs/benchmarks.md (`make bench`
keeps that section when it rewrites the rest).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import machine
from bench.load import BODY, PATH, WrkResult, ensure_wrk, run_wrk
from bench.procs import ALL_CPUS, KEY_ENV, Upstream, free_port, sidecar_command, write_config
from bench.sections import replace_section

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".cache" / "peers"
DOC = ROOT / "docs" / "benchmarks.md"
LITELLM = "litellm[proxy]==1.108.7"
PORTKEY = "@portkey-ai/gateway@1.15.2"
LITELLM_KEY = "sk-bench-master-key-0123456789"
#: The upstream's answer: a target that does not return it is not measured.
ANSWER = b"Hello from the bench upstream."
ONE_CPU = frozenset({min(ALL_CPUS)})

#: Goals (DESIGN.md, Targets): the sidecar's throughput as a multiple of each peer's,
#: and its added p50 as a multiple of the bare passthrough's.
THROUGHPUT_GOALS = {"Portkey": 3.0, "LiteLLM": 30.0}
ADDED_P50_GOAL = 1.5


def install_litellm() -> Path:
    """LiteLLM's proxy in a venv of its own (its pins must not touch the project's)."""
    venv = PEERS / "litellm-venv"
    stamp = venv / f".installed-{LITELLM}"
    if not stamp.exists():
        print(f"bench-peers: installing {LITELLM} into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", LITELLM], check=True)  # fmt: skip
        stamp.touch()
    return venv / "bin" / "litellm"


def install_portkey() -> Path:
    """The Portkey gateway from npm, into its own prefix."""
    prefix = PEERS / "portkey"
    script = prefix / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    stamp = prefix / f".installed-{PORTKEY.replace('/', '_')}"
    if not stamp.exists():
        if shutil.which("npm") is None:
            sys.exit("bench-peers: npm is needed for the Portkey gateway (apt-get install npm)")
        print(f"bench-peers: installing {PORTKEY} into {prefix}", flush=True)
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        "--loglevel=error", PORTKEY], check=True)  # fmt: skip
        stamp.touch()
    return script


@dataclass
class Target:
    """One server under test: its process, port and the headers its routing needs."""

    name: str
    proc: subprocess.Popen[bytes] | None
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def pids(self) -> list[int]:
        """The target's process and all its descendants (a gateway may fork workers)."""
        if self.proc is None:
            return []
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                todo += [int(c) for c in task.read_text().split()]
        return found

    def cpu_seconds(self, upstream: Upstream) -> float:
        pids = self.pids() or [upstream.proc.pid]
        total = 0.0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def pin(self, cpus: frozenset[int], upstream: Upstream) -> None:
        for pid in [*self.pids(), upstream.proc.pid, 0]:
            os.sched_setaffinity(pid, cpus)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def answers(port: int, headers: dict[str, str]) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", PATH, BODY, {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status == 200 and ANSWER in response.read()
    except OSError:
        return False
    finally:
        conn.close()


def spawn(name: str, cmd: list[str], port: int, headers: dict[str, str],
          env: dict[str, str] | None = None, deadline: float = 120.0) -> Target:  # fmt: skip
    """Start a target and wait until it relays the upstream's answer."""
    log = Path(tempfile.mkstemp(prefix=f"bench-{name.split()[0].lower()}-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})  # fmt: skip
    target = Target(name, proc, port, headers, log)
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if answers(port, headers):
            print(f"{name}: ready in {time.monotonic() - started:.1f} s", flush=True)
            return target
        time.sleep(0.2)
    target.stop()
    raise RuntimeError(f"{name} did not answer within {deadline} s: {log.read_text()[-2000:]}")


def start_targets(upstream: Upstream, workdir: Path, targets: list[Target]) -> None:
    """Start every target into `targets` (the caller stops those started if one fails)."""
    litellm, portkey = install_litellm(), install_portkey()
    targets.append(Target("direct", None, upstream.port))
    up = f"http://127.0.0.1:{upstream.port}"
    port = free_port()
    targets.append(spawn("aiohttp passthrough", [sys.executable, "-m", "bench.passthrough",
                                                 str(upstream.port), "--port", str(port)],
                         port, {}))  # fmt: skip
    port, admin = free_port(), free_port()
    targets.append(spawn(
        "llm-rollout", [sidecar_command(), "--config", str(write_config(workdir, upstream.port)),
                        "--log-level", "WARNING", "--listen", f"127.0.0.1:{port}",
                        "--admin-listen", f"127.0.0.1:{admin}"],
        port, {}, env={KEY_ENV: "sk-bench-upstream-key"},
    ))  # fmt: skip
    port = free_port()
    targets.append(spawn(
        "Portkey", ["node", str(portkey), f"--port={port}", "--headless"], port,
        {"Authorization": "Bearer sk-bench", "x-portkey-provider": "openai",
         "x-portkey-custom-host": f"{up}/v1"},
    ))  # fmt: skip
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n"
        f"      model: openai/gpt-4o-mini\n      api_base: {up}/v1\n      api_key: sk-bench\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n",
        encoding="utf-8",
    )
    port = free_port()
    targets.append(spawn(
        "LiteLLM", [str(litellm), "--config", str(config), "--port", str(port),
                    "--host", "127.0.0.1", "--num_workers", "1"],
        port, {"Authorization": f"Bearer {LITELLM_KEY}"},
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
    ))  # fmt: skip


@dataclass
class Figures:
    latency: WrkResult
    throughput: WrkResult
    cpu_us: float


def measure(wrk: str, upstream: Upstream, targets: list[Target], rounds: int,
            seconds: int) -> dict[str, Figures]:  # fmt: skip
    per: dict[str, list[tuple[WrkResult, WrkResult, float]]] = {t.name: [] for t in targets}
    for target in targets:
        run_wrk(wrk, target.port, connections=8, seconds=2, headers=target.headers)  # warm-up
    for number in range(1, rounds + 1):
        for target in targets:
            target.pin(ONE_CPU, upstream)  # one client: everything on one CPU, as `make bench`
            latency = run_wrk(wrk, target.port, connections=1, seconds=seconds,
                              headers=target.headers)  # fmt: skip
            target.pin(ALL_CPUS, upstream)
            before = target.cpu_seconds(upstream)
            load = run_wrk(wrk, target.port, connections=8, seconds=seconds,
                           headers=target.headers)  # fmt: skip
            cpu_us = 1e6 * (target.cpu_seconds(upstream) - before) / load.requests
            per[target.name].append((latency, load, cpu_us))
            print(f"round {number}, {target.name}: p50 {latency.p50_ms:.3f} ms (1 client), "
                  f"{load.rps:,.0f} req/s (8 clients), {cpu_us:,.0f} us CPU/request",
                  flush=True)  # fmt: skip
    mid = statistics.median
    return {
        name: Figures(
            latency=min(runs, key=lambda r: abs(r[0].p50_ms - mid(x[0].p50_ms for x in runs)))[0],
            throughput=min(runs, key=lambda r: abs(r[1].rps - mid(x[1].rps for x in runs)))[1],
            cpu_us=mid(r[2] for r in runs),
        )
        for name, runs in per.items()
    }


def markdown(figures: dict[str, Figures], facts: dict[str, str], rounds: int) -> str:
    direct = figures["direct"].latency.p50_ms
    floor = figures["aiohttp passthrough"].latency.p50_ms - direct
    ours = figures["llm-rollout"]
    lines = [
        "## Peers",
        "",
        f"Generated by `make bench-peers` (`python -m bench.peers`) at {facts['run at']}: the "
        "same chat completion through each target in one run (medians of "
        f"{rounds} rounds; LiteLLM {LITELLM.split('==')[1]}, Portkey "
        f"{PORTKEY.rsplit('@', 1)[1]}). *Added* = target minus direct, one client, all on "
        "one CPU; throughput with 8 clients, all CPUs; CPU per request of the target's "
        "processes (direct: the upstream).",
        "",
        "| target | p50, 1 client | added p50 | added ÷ passthrough's | req/s, 8 clients "
        "| llm-rollout's throughput ÷ target's | CPU per request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in figures.items():
        added = f.latency.p50_ms - direct
        ratio = "-" if name == "direct" or floor <= 0 else f"{added / floor:.2f}x"
        times = f"{ours.throughput.rps / f.throughput.rps:.2f}x"
        lines.append(f"| {name} | {f.latency.p50_ms:.3f} ms | "
                     f"{'-' if name == 'direct' else f'{added:.3f} ms'} | {ratio} | "
                     f"{f.throughput.rps:,.0f} | {times} | {f.cpu_us:,.0f} us |")  # fmt: skip
    lines += ["", "Goals (DESIGN.md):", ""]
    added_ratio = (ours.latency.p50_ms - direct) / floor if floor > 0 else float("inf")
    lines.append(_goal(f"added p50 <= {ADDED_P50_GOAL}x the bare aiohttp passthrough's",
                       added_ratio, ADDED_P50_GOAL, below=True))  # fmt: skip
    for peer, goal in THROUGHPUT_GOALS.items():
        if peer in figures:
            multiple = ours.throughput.rps / figures[peer].throughput.rps
            lines.append(_goal(f"throughput >= {goal:g}x {peer}'s", multiple, goal, below=False))
    lines += [
        "",
        f"Machine: {facts.get('CPU model', '?')}, {facts.get('CPUs (nproc)', '?')} "
        f"CPUs; CPU used by other processes during the run: "
        f"{facts.get('CPU used by other processes during the run (user + system)', '?')}.",
    ]
    return "\n".join(lines) + "\n"


def _goal(text: str, value: float, goal: float, *, below: bool) -> str:
    met = value <= goal if below else value >= goal
    return f"- {text}: **{value:.2f}x** — {'met' if met else 'missed'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians)")
    parser.add_argument("--out", type=Path, default=DOC, help="Markdown report (%(default)s)")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    facts = machine.describe()
    others = machine.OtherLoad()
    workdir = Path(tempfile.mkdtemp(prefix="llm-rollout-peers-"))
    upstream = Upstream.start()
    targets: list[Target] = []
    try:
        start_targets(upstream, workdir, targets)
        figures = measure(wrk, upstream, targets, args.rounds, args.seconds)
    finally:
        for target in targets:
            target.stop()
            if target.log is not None:
                target.log.unlink(missing_ok=True)
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    facts |= others.figures()
    facts["run at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = markdown(figures, facts, args.rounds)
    print("\n" + section)
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.write_text(replace_section(old, "peers", section), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
