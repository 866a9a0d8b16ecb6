"""One simulated sidecar on the control channel: what `bench.fleet` runs thousands of.

It makes the calls a real sidecar's `proxy.server.control.ControlClient` makes, with
the same wire models (`proxy.config.control`) and the same authentication (a bearer
token the operator checks with a TokenReview and a read of the pod), but carries no
proxy behind them, so one process can hold thousands:

- *long-poll* ``GET .../config?after=V&timeout=30``; every answer's version and
  ``traffic.realWeight`` are noted with the time they arrived (propagation);
- *stats* ``POST .../stats``: one `WindowReport` every `stats_interval` seconds;
- *budget* ``POST .../allowance``: a slice at start, then every `budget_interval`
  seconds the lease is settled as fully spent and a new slice asked for (the most
  budget-hungry a sidecar can be; fairness is read from what each one was granted).

A config answer is read with ``json.loads`` rather than the full pydantic model: the
bench measures the operator, and thousands of model validations in one process would
be the fleet's own delay (each real sidecar validates its one copy on its own CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp

from proxy.config import AllowanceRequest, ArmWindow, Grant, WindowReport
from proxy.config.control import LATENCY_BOUNDS_MS

#: Per-request answer timeouts; the long-poll waits up to the operator's cap (30 s) longer.
CALL_TIMEOUT = aiohttp.ClientTimeout(total=30)
POLL_SECONDS = 30


def window_body(sidecar: str, version: int) -> bytes:
    """A plausible window: 40 mock and 10 real answers, one real error."""

    def arm(requests: int, errors: int, bucket: int) -> ArmWindow:
        buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        buckets[bucket] = requests
        slowest = float(LATENCY_BOUNDS_MS[bucket])
        return ArmWindow(requests=requests, errors=errors, latency_buckets=buckets,
                         latency_max_ms=slowest, cost_usd=0.001 * requests)  # fmt: skip

    report = WindowReport(sidecar=sidecar, config_version=version,
                          arms={"mock": arm(40, 0, 6), "real": arm(10, 1, 8)})  # fmt: skip
    return report.model_dump_json(by_alias=True).encode()


@dataclass
class Counters:
    """What every simulated sidecar adds to (one shared instance per fleet)."""

    pushes: int = 0
    push_failures: int = 0
    push_seconds: list[float] = field(default_factory=list)
    allowance_calls: int = 0
    allowance_failures: int = 0
    poll_answers: int = 0  # 200s with a new config
    poll_errors: int = 0


class SimSidecar:
    def __init__(self, session: aiohttp.ClientSession, base: str, pod: str, counters: Counters,
                 stats_interval: float, budget_interval: float) -> None:  # fmt: skip
        self.session, self.base, self.pod, self.counters = session, base, pod, counters
        self.headers = {"Authorization": f"Bearer token-{pod}"}
        self.post_headers = {**self.headers, "Content-Type": "application/json"}
        self.stats_interval, self.budget_interval = stats_interval, budget_interval
        self.version = 0
        self.weight: int | None = None
        self.arrived: dict[int, float] = {}  # version -> time.monotonic() it arrived
        self.weight_at: dict[int, float] = {}  # weight -> first time.monotonic() it was seen
        self.granted = Decimal(0)  # all the slices this sidecar was leased
        self.lease: str | None = None
        self.held = Decimal(0)
        self.stats_paused = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._report()),
                       asyncio.create_task(self._budget())]  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        backoff = 0.5
        while True:
            try:
                params = {"after": str(self.version), "timeout": str(POLL_SECONDS)}
                async with self.session.get(
                    self.base + "/config", params=params, headers=self.headers,
                    timeout=aiohttp.ClientTimeout(total=POLL_SECONDS + 10),
                ) as response:  # fmt: skip
                    if response.status == 304:
                        continue
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
                now = time.monotonic()
                config = json.loads(body)
                self.version = int(config["version"])
                self.weight = int(config["spec"]["traffic"]["realWeight"])
                self.arrived[self.version] = now
                self.weight_at.setdefault(self.weight, now)
                self.counters.poll_answers += 1
                backoff = 0.5
            except (OSError, aiohttp.ClientError, RuntimeError, TimeoutError, ValueError):
                self.counters.poll_errors += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def push(self) -> bool:
        """One stats push; True when the operator took it."""
        started = time.monotonic()
        try:
            async with self.session.post(
                self.base + "/stats", data=window_body(self.pod, self.version),
                headers=self.post_headers, timeout=CALL_TIMEOUT,
            ) as response:  # fmt: skip
                await response.read()
                ok = response.status == 204
        except (OSError, aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.counters.pushes += 1
            self.counters.push_seconds.append(time.monotonic() - started)
        else:
            self.counters.push_failures += 1
        return ok

    async def _report(self) -> None:
        await asyncio.sleep(random.uniform(0, self.stats_interval))  # sidecars start apart
        while True:
            if not self.stats_paused:
                await self.push()
            await asyncio.sleep(self.stats_interval)

    async def allowance(self) -> None:
        """Settle the lease held (as fully spent) and ask for the next slice."""
        ask = AllowanceRequest(sidecar=self.pod, lease_id=self.lease, spent_usd=self.held,
                               report_id=secrets.token_hex(8) if self.lease else "")  # fmt: skip
        try:
            async with self.session.post(
                self.base + "/allowance", data=ask.model_dump_json(by_alias=True),
                headers=self.post_headers, timeout=CALL_TIMEOUT,
            ) as response:  # fmt: skip
                text = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            grant = Grant.model_validate_json(text)
        except (OSError, aiohttp.ClientError, RuntimeError, TimeoutError, ValueError):
            self.counters.allowance_failures += 1
            return
        self.counters.allowance_calls += 1
        self.lease, self.held = (
            (grant.lease_id, grant.slice_usd) if grant.slice_usd else (None, Decimal(0))
        )
        self.granted += grant.slice_usd

    async def _budget(self) -> None:
        await asyncio.sleep(random.uniform(0, self.budget_interval))
        while True:
            await self.allowance()
            await asyncio.sleep(self.budget_interval)
