"""Load with `wrk`: fixed POST bodies, figures read from the script's JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    },
    separators=(",", ":"),
)
STREAM_BODY = BODY[:-1] + ',"stream":true}'
PATH = "/v1/chat/completions"


def ensure_wrk() -> str:
    """The `wrk` binary, installed from Debian's packages when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("bench: wrk is not installed; install it with `sudo apt-get install -y wrk`")
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if found is None:
        sys.exit("bench: apt-get installed no wrk binary")
    return found


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def run_wrk(
    wrk: str,
    port: int,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    unique: bool = False,
    body: str = BODY,
) -> WrkResult:
    """One wrk run of `seconds` with `connections` clients on one thread; fails on any error.

    `headers` are sent with every request (a peer gateway's routing headers and key);
    `unique`: no two request bodies are the same (every one a cache miss); `body`: the
    request (`STREAM_BODY` for a stream)."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(SCRIPT), f"http://127.0.0.1:{port}{PATH}"]  # fmt: skip
    extra = "\n".join(f"{name}: {value}" for name, value in (headers or {}).items())
    env = {**os.environ, "BENCH_BODY": body, "BENCH_HEADERS": extra,
           "BENCH_UNIQUE": "1" if unique else ""}  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(line)
    if figures["errors"] or figures["non2xx"] or not figures["requests"]:
        raise RuntimeError(f"wrk saw failed requests on port {port}: {figures}")
    return WrkResult(
        requests=figures["requests"],
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
    )
