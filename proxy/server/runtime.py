"""The sidecar's live state: the config in force and what goes with it.

The config is an immutable `Snapshot` behind one attribute. A reload builds a new
snapshot and assigns it; a request reads the attribute once at its start and
keeps that snapshot to its end, so a change never tears a request in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config import ConfigError, LLMRolloutSpec, load_file
from proxy.resilience.breaker import State
from proxy.resilience.registry import Registry
from proxy.server.budget import BudgetGate
from proxy.server.keys import KeyStore
from proxy.server.metrics import Metrics
from proxy.stats import WindowStats

log = logging.getLogger("llm_rollout.config")

FORCE_MOCK_ENV = "LLM_ROLLOUT_FORCE_MOCK"


@dataclass(frozen=True, slots=True)
class Snapshot:
    spec: LLMRolloutSpec
    version: int
    source: str
    loaded_at: float = field(default_factory=time.time)


def env_force_mock() -> bool:
    return os.environ.get(FORCE_MOCK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class PortLimits:
    """What one client can hold of the sidecar: time to send headers or a body, open
    connections, and what the admin port serves beyond loopback (`--body-timeout`,
    `--idle-timeout`, `--max-connections`, `--admin-expose-config`)."""

    body_timeout: float = 30.0
    idle_timeout: float = 30.0  # headers not sent in full, or a keep-alive connection idle
    max_connections: int = 1024
    expose_config: bool = False


class Runtime:
    def __init__(
        self,
        spec: LLMRolloutSpec,
        source: str,
        *,
        max_body_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        ledger_path: Path | None = None,
        limits: PortLimits | None = None,
    ) -> None:
        self.metrics = Metrics()
        self.stats = WindowStats()  # per-arm window, drained by the control channel client
        self.budget = BudgetGate(spec, self.metrics, ledger_path)
        self.keys = KeyStore()
        #: Monotonic seconds for breakers, rate limits and deadlines (tests may inject one).
        self.clock = clock
        self.resilience = Registry(on_transition=self._breaker_moved)
        self.force_mock_env = env_force_mock()
        self.max_body_bytes = max_body_bytes
        self.limits = limits or PortLimits()
        self.last_error: str | None = None
        self.snapshot = Snapshot(spec, 1, source)
        self._publish()

    def apply(self, spec: LLMRolloutSpec, source: str) -> Snapshot:
        """Swap in a new valid config; requests in flight keep the one they started with."""
        self.snapshot = Snapshot(spec, self.snapshot.version + 1, source)
        self.budget.configure(spec)
        self.last_error = None
        self.metrics.config_reloads.labels("applied").inc()
        self._publish()
        log.info(
            "config applied: version=%d source=%s realWeight=%d",
            self.snapshot.version, source, spec.traffic.real_weight,
        )  # fmt: skip
        return self.snapshot

    def reject(self, error: ConfigError) -> None:
        """Refuse a bad config: log why, count it, keep serving the last good one."""
        self.last_error = str(error)
        self.metrics.config_reloads.labels("rejected").inc()
        log.error("%s\nkeeping config version %d", error, self.snapshot.version)

    def reload_file(self, path: Path) -> bool:
        try:
            spec = load_file(path)
        except ConfigError as error:
            self.reject(error)
            return False
        self.apply(spec, str(path))
        return True

    def _publish(self) -> None:
        self.metrics.config_version.set(self.snapshot.version)
        self.metrics.real_weight.set(self.snapshot.spec.traffic.real_weight)
        self.resilience.sync(self.snapshot.spec, self.clock())
        self.refresh_breaker_gauges()

    def refresh_breaker_gauges(self) -> None:
        for provider, state in self.resilience.states(self.clock()).items():
            self.metrics.breaker_state.labels(provider).set(state.value)

    def _breaker_moved(self, provider: str, state: State) -> None:
        self.metrics.breaker_state.labels(provider).set(state.value)
        self.metrics.breaker_transitions.labels(provider, state.label).inc()
        log.warning("circuit breaker of provider '%s' is now %s", provider, state.label)
