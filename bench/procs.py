"""The processes under test: the fake upstream and the sidecar, each its own process.

Both are started as real child processes (the sidecar through its installed
`llm-rollout-proxy` command) and can be moved between CPUs while they run
(`Placement`), so each figure is taken with a known placement.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROVIDER = "openai-bench"
KEY_ENV = "BENCH_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The CPUs this run may use; a placement with no CPU set of its own uses them all.
ALL_CPUS = frozenset(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Placement:
    """Which CPUs the sidecar and the load side (wrk, fake upstream, stream client) run on."""

    name: str
    description: str
    sidecar: frozenset[int] = ALL_CPUS
    load: frozenset[int] = ALL_CPUS

    def apply(self, sidecar: Sidecar, upstream: Upstream) -> None:
        os.sched_setaffinity(sidecar.proc.pid, self.sidecar)
        os.sched_setaffinity(upstream.proc.pid, self.load)
        os.sched_setaffinity(0, self.load)  # the stream client, and wrk: children inherit it


FREE = Placement("free", "all processes on all CPUs, placed by the scheduler")
ONE_CPU = Placement(
    "one CPU",
    "sidecar, wrk and fake upstream all on CPU 0",
    frozenset({min(ALL_CPUS)}),
    frozenset({min(ALL_CPUS)}),
)
SPLIT = Placement(
    "split",
    "sidecar on one CPU; wrk and fake upstream on another",
    frozenset({min(ALL_CPUS)}),
    frozenset({max(ALL_CPUS)}),
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)"; utime, stime are 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Upstream:
    proc: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls) -> Upstream:
        proc = subprocess.Popen([sys.executable, "-m", "bench.upstream"], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            proc.kill()
            raise RuntimeError(f"bench upstream did not start (printed {line!r})")
        return cls(proc, int(line))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


#: The bench's cache bound: small enough that the miss runs (~0.5 KB an entry, thousands
#: of them) fill it several times over, so eviction is part of what is measured.
CACHE_MAX_BYTES = 2**20


def write_config(
    directory: Path,
    upstream_port: int,
    daily_cap_usd: str | None = None,
    cache: bool = False,
    redis_url: str | None = None,
    shadow: int | None = None,
) -> Path:
    """The bench's rollout: all traffic real to the fake upstream; with a budget cap
    when `daily_cap_usd` is given (every request then reserves its worst case, which
    counts its tokens exactly with the OpenAI tokenizer); with the response cache on
    for every request when `cache` (the bench repeats one body, so all but the first
    are hits), in `redis_url` when given. With `shadow` (a percent): all traffic to the
    mock instead, that share of it copied to the upstream."""
    budget = f"  budget: {{dailyUSD: '{daily_cap_usd}'}}\n" if daily_cap_usd else ""
    redis = f", redis: {{url: '{redis_url}', timeoutMs: 200}}" if redis_url else ""
    budget += (f"  cache: {{enabled: true, when: always, maxBytes: {CACHE_MAX_BYTES}{redis}}}\n"
               if cache else "")  # fmt: skip
    traffic = "    realWeight: 100\n"
    name = "bench-capped" if daily_cap_usd else "bench-cached" if cache else "bench-rollout"
    name += "-redis" if redis_url else ""
    if shadow is not None:
        traffic = f"    realWeight: 0\n    shadow: {{percent: {shadow}}}\n"
        name = f"bench-shadow-{shadow}"
    path = directory / f"{name}.yaml"
    path.write_text(
        "apiVersion: llm-rollout.io/v1alpha1\n"
        "kind: LLMRollout\n"
        "metadata: {name: bench}\n"
        "spec:\n"
        "  providers:\n"
        f"    - name: {PROVIDER}\n"
        "      type: openai\n"
        f"      baseURL: http://127.0.0.1:{upstream_port}/v1\n"
        f"      apiKey: {{env: {KEY_ENV}}}\n"
        "  traffic:\n" + traffic + budget,
        encoding="utf-8",
    )
    return path


def sidecar_command() -> str:
    """The installed console script next to this interpreter (the venv's)."""
    script = Path(sys.executable).parent / "llm-rollout-proxy"
    if script.exists():
        return str(script)
    found = shutil.which("llm-rollout-proxy")
    if found is None:
        raise RuntimeError("llm-rollout-proxy is not installed: run `make venv` first")
    return found


def metric(port: int, selector: str) -> float:
    """A sidecar's metric from its admin port: the sum of the samples whose exposition
    line starts with `selector` (a name, or a name with all its labels in order)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith((selector + "{", selector + " "))
    )


def get(port: int, path: str, timeout: float = 1.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Sidecar:
    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    start_seconds: float
    log: Path

    @classmethod
    def start(
        cls,
        config: Path,
        deadline: float = 10.0,
        extra_env: dict[str, str] | None = None,
        tree: Path | None = None,
    ) -> Sidecar:
        """Spawn the sidecar and return once `/readyz` answers 200, timing spawn to ready.

        `extra_env`: more variables for the sidecar (the traced run's ``OTEL_*``).
        `tree`: a directory holding another version's `proxy` package, run instead of the
        installed one (``python -m proxy`` with that directory first on the path)."""
        port, admin_port = free_port(), free_port()
        log = Path(tempfile.mkstemp(prefix="bench-sidecar-", suffix=".log")[1])
        program = [sidecar_command()] if tree is None else [sys.executable, "-m", "proxy"]
        cmd = [
            *program, "--config", str(config), "--log-level", "WARNING",
            "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}",
        ]  # fmt: skip
        env = {**os.environ, KEY_ENV: "sk-bench-upstream-key", **(extra_env or {})}
        env.pop("LLM_ROLLOUT_FORCE_MOCK", None)
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        with log.open("wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tree or Path.cwd()
            )
        while time.perf_counter() - started < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {proc.returncode}: {log.read_text()}")
            try:
                if get(admin_port, "/readyz") == 200:
                    return cls(proc, port, admin_port, time.perf_counter() - started, log)
            except OSError:
                pass
            time.sleep(0.005)
        proc.kill()
        raise RuntimeError(f"sidecar not ready within {deadline}s: {log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.unlink(missing_ok=True)

    def memory_mb(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak) of the sidecar process, in MB."""
        figures = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024
        return figures
