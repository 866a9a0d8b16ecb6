"""The sidecar's end of the control channel: follow the operator, report the windows.

Long-polls the rollout's effective config and applies each new version atomically
(`Runtime.apply`); pushes the per-arm window stats on the rollout's own cadence
(`stats_cadence`: half its analysis interval, between `min_stats_interval` and
`MAX_STATS_INTERVAL`), so every analysis sees fresh windows; a window the operator
could not take is kept and sent with the next one (one it refused is dropped); keeps
the budget gate supplied with the operator's budget slices (`proxy.budget.slices`
decides what to ask; this module only makes the calls). When the
operator is away the sidecar keeps its last good config and retries with backoff:
traffic never waits on the control plane. The token is re-read from its file on
every call because projected ServiceAccount tokens rotate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp
from pydantic import ValidationError

from proxy.budget.slices import Ask, SliceKeeper
from proxy.config import (
    AllowanceRequest,
    Arm,
    ArmWindow,
    EffectiveConfig,
    Grant,
    LLMRolloutSpec,
    WindowReport,
    merge_windows,
    parse_duration,
)
from proxy.server.runtime import Runtime
from proxy.server.tasks import cancel_and_wait

log = logging.getLogger("llm_rollout.control")

#: The slowest stats cadence: a rollout without analysis still reports every 10 s.
MAX_STATS_INTERVAL = 10.0


def stats_cadence(spec: LLMRolloutSpec, floor: float) -> float:
    """Seconds between stats pushes: half the rollout's analysis interval (two windows
    per analysis, so none falls between pushes), at least `floor` (fleet scale: 1,000
    sidecars pushing every second is 1,000 small requests a second at the operator)."""
    analysis = spec.strategy.analysis if spec.strategy is not None else None
    wanted = parse_duration(analysis.interval) / 2 if analysis is not None else MAX_STATS_INTERVAL
    return min(MAX_STATS_INTERVAL, max(floor, wanted))


class ControlClient:
    def __init__(
        self,
        runtime: Runtime,
        url: str,
        rollout: str,
        token_file: Path,
        *,
        sidecar: str,
        poll_seconds: float = 30.0,
        min_stats_interval: float = 1.0,
    ) -> None:
        namespace, _, name = rollout.partition("/")
        if not namespace or not name:
            raise ValueError(f"--rollout {rollout!r} is not NAMESPACE/NAME")
        self.runtime = runtime
        runtime.cache.rollout = rollout  # shared cache entries never cross rollouts
        self.base = f"{url.rstrip('/')}/v1/namespaces/{namespace}/llmrollouts/{name}"
        self.token_file = token_file
        self.sidecar = sidecar
        self.poll_seconds = poll_seconds
        self.min_stats_interval = min_stats_interval
        self.version = 0  # the operator's config version in force (0: none yet)
        self.breaker_epoch = 0  # the operator's last word on trying providers again
        #: Stats not yet taken by the operator, and the config version they began under.
        self._unsent: dict[Arm, ArmWindow] = {}
        self._unsent_providers: dict[str, ArmWindow] = {}  # the real arm's, per provider
        self._window_version = 0
        #: Set when a new config arrives: the current window ends there (it is pushed
        #: tagged with the old version) and the cadence is recomputed from the new spec.
        self._reconfigured = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        #: From here on the rollout's caps are the operator's: real calls spend its slices.
        self.keeper: SliceKeeper = runtime.budget.join_cluster(report_every=MAX_STATS_INTERVAL)

    @property
    def stats_interval(self) -> float:
        return stats_cadence(self.runtime.snapshot.spec, self.min_stats_interval)

    def _headers(self) -> dict[str, str]:
        token = self.token_file.read_text(encoding="utf-8").strip()
        return {"Authorization": f"Bearer {token}"}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._tasks = [
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._report()),
            asyncio.create_task(self._budget()),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        if self._session is not None:
            # Leaving: give back every slice not held by a call in flight, at once.
            await self._allowance_calls(self.keeper.returns(self.runtime.budget.clock()))
            await self._session.close()

    async def _budget(self) -> None:
        """Keep the budget gate supplied with slices: renew, report, ask ahead of need."""
        gate = self.runtime.budget
        tick = min(1.0, self.stats_interval)
        backoff = tick
        while True:
            gate.wanted.clear()
            if gate.ledger.cluster_capped:
                asks = self.keeper.asks(gate.clock())
            else:  # no cap (any more): nothing to hold, give back what is held
                asks = self.keeper.returns(gate.clock())
            if await self._allowance_calls(asks):
                backoff = tick
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(tick):  # not wait_for: see _report
                        await gate.wanted.wait()
            else:  # operator away: back off, but well within a lease's renewal margin
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _allowance_calls(self, asks: list[Ask]) -> bool:
        """Make the keeper's calls in order; stop at the first failure (False: retry later)."""
        assert self._session is not None
        gate = self.runtime.budget
        for ask in asks:
            body = AllowanceRequest(
                sidecar=self.sidecar, lease_id=ask.lease_id, spent_usd=ask.spent,
                keep_usd=ask.keep, want_slice=ask.want_slice, report_id=ask.report_id,
            )  # fmt: skip
            try:
                async with self._session.post(
                    self.base + "/allowance",
                    data=body.model_dump_json(by_alias=True),
                    headers={**self._headers(), "Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    text = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {text[:200]!r}")
                grant = Grant.model_validate_json(text)
            except (OSError, aiohttp.ClientError, RuntimeError, ValidationError) as error:
                log.warning(
                    "budget allowance from %s: %s; spending only slices already held, "
                    "retrying", self.base, error,
                )  # fmt: skip
                self.keeper.failed(gate.clock())
                return False
            self.keeper.answered(
                ask, grant.lease_id, grant.slice_usd, grant.ttl_seconds, grant.kept_usd,
                gate.clock(),
            )  # fmt: skip
        return True

    async def _follow(self) -> None:
        assert self._session is not None
        backoff = 0.5
        while True:
            try:
                params = {"after": str(self.version), "timeout": str(self.poll_seconds)}
                timeout = aiohttp.ClientTimeout(total=self.poll_seconds + 10)
                async with self._session.get(
                    self.base + "/config", params=params, headers=self._headers(), timeout=timeout
                ) as response:
                    if response.status == 304:
                        continue
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
                config = EffectiveConfig.model_validate_json(body)
                joining = self.version == 0
                self.version = config.version
                self.runtime.apply(config.spec, f"operator v{config.version} ({config.phase})")
                if config.breaker_epoch > self.breaker_epoch:
                    self._try_providers_again(config.breaker_epoch, joining)
                if config.cache_epoch != self.runtime.cache.epoch:  # `kubectl ... cache-flush`
                    self.runtime.cache.new_epoch(config.cache_epoch, joining)
                self._reconfigured.set()
                self.runtime.budget.wanted.set()  # a new cap: the keeper acts on it now
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except (OSError, aiohttp.ClientError, RuntimeError, ValidationError) as error:
                log.warning(
                    "control channel %s: %s; keeping config version %d, retrying in %.1fs",
                    self.base, error, self.runtime.snapshot.version, backoff,
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _try_providers_again(self, epoch: int, joining: bool) -> None:
        """The operator re-enabled the providers (a retry after an outage): open breakers
        half-open now, so probes find out whether the provider is back instead of the
        real arm being served by the mock, and judged as failing, until `openSeconds`."""
        self.breaker_epoch = epoch
        if joining:
            return  # a sidecar just joining has no breaker opened by that outage
        moved = self.runtime.resilience.probe_open(self.runtime.clock())
        self.runtime.refresh_breaker_gauges()
        if moved:
            log.info("operator asked to try providers again: %s half-open", ", ".join(moved))

    async def _report(self) -> None:
        assert self._session is not None
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when
            # the event is set in the loop turn that cancels it (cpython gh-86296), so a
            # new config arriving as the sidecar stops swallowed the stop and hung it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.stats_interval):
                    await self._reconfigured.wait()
            self._reconfigured.clear()
            stats = self.runtime.stats
            self._unsent = merge_windows(self._unsent, stats.drain())
            self._unsent_providers = merge_windows(self._unsent_providers, stats.drain_providers())
            report = WindowReport(
                sidecar=self.sidecar, config_version=self._window_version, arms=self._unsent,
                providers=self._unsent_providers,
            )  # fmt: skip
            try:
                async with self._session.post(
                    self.base + "/stats",
                    data=report.model_dump_json(by_alias=True),
                    headers={**self._headers(), "Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    if response.status == 400:  # read and refused: sent again, it only grows
                        log.warning("stats push to %s refused, window dropped: %s",
                                    self.base, await response.text())  # fmt: skip
                    elif response.status >= 300:
                        raise RuntimeError(f"HTTP {response.status}")
            except (OSError, aiohttp.ClientError, RuntimeError) as error:
                log.warning("stats push to %s failed: %s (window kept for the next push)",
                            self.base, error)  # fmt: skip
                continue
            self._unsent, self._unsent_providers = {}, {}
            self._window_version = self.version  # the next window begins under this one
