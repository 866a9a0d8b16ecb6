"""`make soak MINUTES=10`: a pod's long life in minutes, watching the sidecar for leaks.

One sidecar process (the installed command, as in a pod) in front of the three fake
providers, driven for MINUTES by mixed traffic: every dialect, plain and streamed,
real and mock arms, provider faults (5xx, 429, streams cut or ended by an error
event, slow first bytes), mock faults, clients that hang up mid-stream, tenants under
a budget cap. The sidecar follows a control channel as in a cluster: the operator's own
one (`rollout_operator.control`, its hub, ledger and reconcile step, ticked here in place
of kopf, without Kubernetes), so it long-polls its config, pushes window stats and
spends the rollout's cap from budget slices it leases, settles and renews; the config
changes through it every 20 s. Every few seconds it reads the sidecar's own figures
from `/metrics` (prometheus-client's `process_*`, plus `llm_rollout_asyncio_tasks` and
`llm_rollout_open_connections`).

Verdict: after warm-up (the first fifth, at least 30 s) RSS grows by at most 5 MB;
once the traffic stops, open connections return to 0 and asyncio tasks and fds to
their level before the traffic; 0 requests lost (a request is lost when it gets no
answer in its own dialect: a connection error, a timeout, a foreign or truncated
body). Writes `docs/soak.md` and the plot `docs/soak.svg`. Not in CI (it takes
minutes); `python -m tests.soak --minutes 1` is a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.config import LabelSelector
from rollout_operator import reconcile
from rollout_operator.control import build_app
from rollout_operator.hub import Hub
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeProvider, Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

DOCS = Path(__file__).resolve().parents[1] / "docs"
WORKERS = 12
SAMPLE_SECONDS = 5.0
RELOAD_SECONDS = 20.0
RSS_GROWTH_MB = 5.0
WEIGHTS = (30, 50, 70)
KEY_ENVS = {"openai": "SOAK_OPENAI_KEY", "anthropic": "SOAK_ANTHROPIC_KEY",
            "gemini": "SOAK_GEMINI_KEY"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(fakes: dict[str, FakeProvider], weight: int) -> dict[str, Any]:
    providers = [
        {"name": f"{kind}-fake", "type": kind,
         "baseURL": fake.base + ("/v1" if kind == "openai" else ""),
         "apiKey": {"env": KEY_ENVS[kind]},
         "timeouts": {"connectMs": 500, "firstByteMs": 2000, "totalMs": 10000}}
        for kind, fake in fakes.items()
    ]  # fmt: skip
    return {
        "providers": providers,
        "fallback": [*(p["name"] for p in providers), "mock"],
        "traffic": {"realWeight": weight, "stickyKey": {"header": "x-user-id"}},
        "mock": {"seed": 7, "errors": {"rate": 0.03, "kinds": {
            "rateLimit": 1, "serverError": 1, "overloaded": 1, "streamCut": 2}},
            "latency": {"firstTokenMs": {"p50": 5, "p95": 30}}},
        "retry": {"maxAttempts": 2, "initialBackoffMs": 5, "maxBackoffMs": 50,
                  "deadlineMs": 8000},
        "circuitBreaker": {"failureRatio": 0.6, "minRequests": 20, "windowSeconds": 10,
                           "openSeconds": 2, "halfOpenProbes": 2},
        # A slice is a twentieth of the cap: $0.50, so a 10-minute soak leases several.
        "budget": {"dailyUSD": "10.00"},
        "tenants": {"header": "x-tenant-id", "default": {"dailyUSD": "100.00"}},
        "selector": {"matchLabels": {"app": "soak"}},
    }  # fmt: skip


class AnyPod:
    """Every token is the soak's one pod (authentication is not what the soak tests)."""

    async def authenticate(self, token: str, namespace: str, selector: LabelSelector | None) -> str:
        return "soak-pod"


class ControlChannel:
    """The operator's control channel and reconcile step for one rollout, minus kopf.

    `reconcile.tick` runs on a timer as kopf's timer would run it, the status it returns
    kept as the API server would keep it; a config change bumps `generation`.
    """

    KEY = ("soak", "soak")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.hub = Hub(sidecar_ttl=60)
        self.spec, self.meta, self.status = spec, {"generation": 1}, {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self.hub, AnyPod(), 30.0), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.status, _ = reconcile.tick(self.hub, self.KEY, self.spec, self.meta,
                                            self.status, time.time())  # fmt: skip
            await asyncio.sleep(0.25)

    def change(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.meta["generation"] += 1

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()


def random_fault(rng: random.Random) -> Fault:
    draw = rng.random()
    if draw < 0.03:
        return Fault(status=rng.choice([500, 503]))
    if draw < 0.05:
        return Fault(status=429, headers={"retry-after": "0"})
    if draw < 0.07:
        return Fault(cut_after_chunks=2)
    if draw < 0.08:
        return Fault(error_after_chunks=2)
    if draw < 0.10:
        return Fault(first_byte_delay=0.2)
    return Fault()


@dataclass
class Ask:
    dialect: str
    path: str
    body: dict[str, Any]
    stream: bool


def ask(rng: random.Random) -> Ask:
    stream = rng.random() < 0.5
    text = rng.choice(["Write a tweet about hiking boots", "An email about our spring sale",
                       "A product description for a steel water bottle",
                       "Three ad headlines for running socks"])  # fmt: skip
    messages = [{"role": "user", "content": text}]
    kind = rng.choice(["chat", "responses", "embeddings", "anthropic", "gemini"])
    if kind == "chat":
        return Ask(
            kind,
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 80, "stream": stream},
            stream,
        )
    if kind == "responses":
        return Ask(
            kind,
            "/v1/responses",
            {"model": "gpt-4o-mini", "input": text, "max_output_tokens": 80, "stream": stream},
            stream,
        )
    if kind == "embeddings":
        return Ask(
            kind,
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": [text, text[::-1]]},
            False,
        )
    if kind == "anthropic":
        return Ask(
            kind,
            "/v1/messages",
            {"model": "claude-haiku-4-5", "max_tokens": 80, "messages": messages, "stream": stream},
            stream,
        )
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return Ask(kind, f"/v1beta/models/gemini-2.5-flash:{method}",
               {"contents": [{"role": "user", "parts": [{"text": text}]}],
                "generationConfig": {"maxOutputTokens": 80}}, stream)  # fmt: skip


def answered(item: Ask, status: int, body: bytes) -> bool:
    """Whether the client got an answer in its own dialect (success or dialect error)."""
    if item.stream and status == 200:
        last = body.rstrip().rsplit(b"\n\n", 1)[-1]  # the last event
        if item.dialect == "chat":
            return last == b"data: [DONE]" or last.startswith(b'data: {"error"')
        if item.dialect in ("responses", "anthropic"):
            name = last.partition(b"\n")[0].removeprefix(b"event: ")
            return name in (b"response.completed", b"response.incomplete", b"message_stop",
                            b"error", b"response.failed")  # fmt: skip
        return b"finishReason" in last or last.startswith(b'data: {"error"')
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    if status >= 400:
        error = payload.get("error")
        if item.dialect == "anthropic":
            return payload.get("type") == "error" and isinstance(error, dict)
        if item.dialect == "gemini":
            return isinstance(error, dict) and "status" in error and "code" in error
        return isinstance(error, dict) and "message" in error
    expected = {"chat": "choices", "responses": "output", "embeddings": "data",
                "anthropic": "content", "gemini": "candidates"}[item.dialect]  # fmt: skip
    return expected in payload


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    hung_up: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)


async def worker(http: aiohttp.ClientSession, base: str, rng: random.Random, until: float,
                 tally: Tally) -> None:  # fmt: skip
    while time.monotonic() < until:
        item = ask(rng)
        headers = {"x-user-id": f"user-{rng.randrange(200)}",
                   "x-tenant-id": f"tenant-{rng.randrange(5)}",
                   "Authorization": "Bearer sk-app-key-the-sidecar-drops",
                   "anthropic-version": "2023-06-01"}  # fmt: skip
        tally.sent += 1
        try:
            async with http.post(base + item.path, json=item.body, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=30)) as response:  # fmt: skip
                tally.statuses[response.status] += 1
                if item.stream and response.status == 200 and rng.random() < 0.05:
                    await response.content.readany()  # the app hangs up mid-stream
                    response.close()
                    tally.hung_up += 1
                    continue
                body = await response.read()
            if answered(item, response.status, body):
                tally.answered += 1
            else:
                tally.lost[f"{item.dialect} {response.status}: {body[:80]!r}"] += 1
        except (aiohttp.ClientError, TimeoutError) as error:
            tally.lost[f"{item.dialect}: {type(error).__name__}"] += 1


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: float
    tasks: float
    connections: float
    requests: int


async def sample(http: aiohttp.ClientSession, admin: int, at: float, requests: int) -> Sample:
    async with http.get(f"http://127.0.0.1:{admin}/metrics") as response:
        text = await response.text()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line and not line.startswith("#"))  # fmt: skip
    return Sample(at, float(values["process_resident_memory_bytes"]) / 2**20,
                  float(values["process_open_fds"]), float(values["llm_rollout_asyncio_tasks"]),
                  float(values['llm_rollout_open_connections{port="data"}']), requests)  # fmt: skip


def plot(samples: list[Sample], warmup: float) -> str:
    """Four small line charts (RSS, fds, tasks, connections) over time, as SVG."""
    width, height, pad = 640, 110, 40
    series = [("RSS (MB)", [s.rss_mb for s in samples]), ("open fds", [s.fds for s in samples]),
              ("asyncio tasks", [s.tasks for s in samples]),
              ("open data connections", [s.connections for s in samples])]  # fmt: skip
    times = [s.at for s in samples]
    span = max(times[-1], 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 2 * pad}" '
             f'height="{len(series) * (height + pad) + pad}" font-family="sans-serif" '
             'font-size="11"><rect width="100%" height="100%" fill="white"/>']  # fmt: skip
    for row, (name, values) in enumerate(series):
        top = pad + row * (height + pad)
        low, high = min(values), max(values)
        high = high if high > low else low + 1
        points = " ".join(
            f"{pad + width * t / span:.1f},{top + height - height * (v - low) / (high - low):.1f}"
            for t, v in zip(times, values, strict=True)
        )
        x_warm = pad + width * warmup / span
        parts += [
            f'<text x="{pad}" y="{top - 6}" font-weight="bold">{name}</text>',
            f'<rect x="{pad}" y="{top}" width="{width}" height="{height}" fill="none" '
            'stroke="#ccc"/>',
            f'<line x1="{x_warm:.1f}" y1="{top}" x2="{x_warm:.1f}" y2="{top + height}" '
            'stroke="#e90" stroke-dasharray="4 3"/>',
            f'<text x="{pad - 4}" y="{top + 10}" text-anchor="end">{high:g}</text>',
            f'<text x="{pad - 4}" y="{top + height}" text-anchor="end">{low:g}</text>',
            f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1.5"/>',
        ]
    bottom = len(series) * (height + pad) + pad - 8
    parts.append(f'<text x="{pad}" y="{bottom}">seconds 0 – {span:.0f}; dashed: end of '
                 "warm-up</text></svg>")  # fmt: skip
    return "\n".join(parts) + "\n"


async def soak(minutes: float, out: Path) -> int:
    fakes: dict[str, FakeProvider] = {"openai": FakeOpenAI(), "anthropic": FakeAnthropic(),
                                      "gemini": FakeGemini()}  # fmt: skip
    for fake in fakes.values():
        await fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="llm-rollout-soak-"))
    config_path = workdir / "rollout.yaml"
    config_path.write_text(json.dumps({"spec": {}}))  # the start-up config, until the first poll
    (workdir / "token").write_text("soak-token\n")
    control = ControlChannel(config(fakes, WEIGHTS[0]))
    await control.start()
    data, admin = free_port(), free_port()
    env = {**os.environ, **{KEY_ENVS[k]: f.key for k, f in fakes.items()}}
    env.pop("LLM_ROLLOUT_FORCE_MOCK", None)
    log = workdir / "sidecar.log"
    sidecar = subprocess.Popen(  # noqa: ASYNC220 (once, before any traffic)
        [sys.executable, "-m", "proxy", "--config", str(config_path), "--log-level", "ERROR",
         "--listen", f"127.0.0.1:{data}", "--admin-listen", f"127.0.0.1:{admin}",
         "--control-url", f"http://127.0.0.1:{control.port}", "--rollout", "soak/soak",
         "--token-file", str(workdir / "token")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    rng = random.Random(42)
    tally = Tally()
    samples: list[Sample] = []
    try:
        async with aiohttp.ClientSession() as probe:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with probe.get(f"http://127.0.0.1:{admin}/readyz") as ready:
                        if ready.status == 200:
                            break
                await asyncio.sleep(0.05)
            # The idle level, taken at its highest over a few seconds: the control channel's
            # own calls (long-poll, stats, slices) come and go with a task and a socket each.
            idles = []
            for _ in range(6):
                idles.append(await sample(probe, admin, 0.0, 0))
                await asyncio.sleep(0.5)
            idle = max(idles, key=lambda s: (s.tasks, s.fds))
            began = time.monotonic()
            until = began + minutes * 60
            connector = aiohttp.TCPConnector(limit=WORKERS)
            async with aiohttp.ClientSession(connector=connector) as http:
                base = f"http://127.0.0.1:{data}"
                workers = [asyncio.create_task(worker(http, base, random.Random(n), until, tally))
                           for n in range(WORKERS)]  # fmt: skip
                reload_at, weight = began + RELOAD_SECONDS, 0
                while time.monotonic() < until:
                    for fake in fakes.values():
                        while len(fake.faults) < 20:
                            fake.faults.append(random_fault(rng))
                        fake.requests.clear()  # the driver's memory, not the sidecar's
                    if time.monotonic() >= reload_at:
                        weight += 1
                        control.change(config(fakes, WEIGHTS[weight % len(WEIGHTS)]))
                        reload_at += RELOAD_SECONDS
                    now = time.monotonic() - began
                    samples.append(await sample(probe, admin, now, tally.sent))
                    print(f"{now:5.0f} s  RSS {samples[-1].rss_mb:6.1f} MB  fds "
                          f"{samples[-1].fds:4.0f}  tasks {samples[-1].tasks:4.0f}  conns "
                          f"{samples[-1].connections:3.0f}  requests {tally.sent:,}  lost "
                          f"{sum(tally.lost.values())}", flush=True)  # fmt: skip
                    await asyncio.sleep(SAMPLE_SECONDS)
                await asyncio.gather(*workers)
            # Idle upstream connections close after aiohttp's keep-alive timeout (15 s),
            # checked on a 15 s timer: up to 30 s after the last request.
            settle_until = time.monotonic() + 35
            while True:
                after = await sample(probe, admin, time.monotonic() - began, tally.sent)
                if settled(idle, after) or time.monotonic() > settle_until:
                    break
                await asyncio.sleep(1)
    finally:
        sidecar.terminate()
        sidecar.wait(10)
        await control.stop()
        for fake in fakes.values():
            await fake.stop()
    return report(minutes, samples, idle, after, tally, out, log, control.status)


def settled(idle: Sample, after: Sample) -> bool:
    """Whether the sidecar is back to where it was before the load (the checks below)."""
    return after.connections == 0 and after.tasks <= idle.tasks and after.fds <= idle.fds + 2


def report(minutes: float, samples: list[Sample], idle: Sample, after: Sample, tally: Tally,
           out: Path, log: Path, status: dict[str, Any]) -> int:  # fmt: skip
    span = samples[-1].at if samples else 0.0
    warmup = max(30.0, span / 5)
    steady = [s for s in samples if s.at >= warmup] or samples
    head, tail = steady[:3], steady[-3:]
    growth = statistics.median(s.rss_mb for s in tail) - statistics.median(s.rss_mb for s in head)
    lost = sum(tally.lost.values())
    budget = status.get("budget") or {}
    checks = [
        (f"RSS growth after warm-up <= {RSS_GROWTH_MB:g} MB", f"{growth:+.1f} MB",
         growth <= RSS_GROWTH_MB),
        ("open data connections after the load", f"{after.connections:.0f}",
         after.connections == 0),
        ("asyncio tasks after the load vs before", f"{after.tasks:.0f} vs {idle.tasks:.0f}",
         after.tasks <= idle.tasks),
        ("open fds after the load vs before", f"{after.fds:.0f} vs {idle.fds:.0f}",
         after.fds <= idle.fds + 2),
        ("requests lost", f"{lost} of {tally.sent:,}", lost == 0),
        ("spend booked from budget slices (operator's ledger)",
         f"${budget.get('spentUSD', '0')} of ${budget.get('capUSD')}",
         float(budget.get("spentUSD", 0)) > 0),
        ("config versions the sidecar applied through the control channel",
         f"{status.get('sidecars', {}).get('configVersion', '?')}", True),
    ]  # fmt: skip
    rate = tally.sent / span if span else 0.0
    lines = [
        "# Soak",
        "",
        f"Generated by `make soak MINUTES={minutes:g}` (`python -m tests.soak`), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one sidecar process, "
        f"{WORKERS} clients of mixed traffic (every dialect, streams, provider and mock "
        "faults, hang-ups mid-stream, tenants under a budget cap, budget slices and a config "
        f"change every {RELOAD_SECONDS:g} s through the control channel) for {span:.0f} s, "
        f"{tally.sent:,} requests ({rate:,.0f}/s). "
        "See the module docstring of `tests/soak.py` for the method.",
        "",
        "| check | measured | verdict |",
        "|---|---:|---|",
        *(f"| {name} | {value} | {'met' if ok else 'FAILED'} |" for name, value, ok in checks),
        "",
        f"Answers: {tally.answered:,} in their dialect, {tally.hung_up:,} streams left by the "
        f"client on purpose; statuses {dict(sorted(tally.statuses.items()))}.",
        "",
        "![RSS, fds, asyncio tasks and connections over the soak](soak.svg)",
        "",
        "| second | RSS (MB) | fds | tasks | data connections | requests |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {s.at:.0f} | {s.rss_mb:.1f} | {s.fds:.0f} | {s.tasks:.0f} | {s.connections:.0f} "
          f"| {s.requests:,} |" for s in samples[:: max(1, len(samples) // 20)]),
    ]  # fmt: skip
    if tally.lost:
        lines += ["", "Lost:", "", *(f"- {n} x {why}" for why, n in tally.lost.most_common(10))]
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if samples:
        (out / "soak.svg").write_text(plot(samples, warmup), encoding="utf-8")
    print("\n".join(lines[7 : 8 + len(checks)]))
    print(f"wrote {out / 'soak.md'} and soak.svg")
    if not all(ok for _, _, ok in checks):
        print(f"sidecar log: {log}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=DOCS, help="where soak.md/.svg go")
    args = parser.parse_args()
    return asyncio.run(soak(args.minutes, args.out))


if __name__ == "__main__":
    sys.exit(main())
