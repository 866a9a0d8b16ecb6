"""What the operator knows about each rollout between ticks, shared with the control channel.

The kopf timer is the only writer of a rollout's state; the control channel reads
the effective config from here and drops sidecar reports in. Publishing a new
effective config wakes every long-poll waiting on that rollout at once, which is
what makes a rollback reach all sidecars in well under the 2 s target.
No aiohttp and no kopf here: asyncio and the pure core only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Tracer

from proxy.config import EffectiveConfig, LLMRolloutSpec, WindowReport
from proxy.config.audit import AuditLog
from proxy.config.model import Shadow
from rollout_operator.analysis import Judgement, Windows
from rollout_operator.ledger import Ledger, rate_share
from rollout_operator.steps import RolloutState

Key = tuple[str, str]  # (namespace, name)


@dataclass(slots=True)
class Live:
    spec: LLMRolloutSpec
    state: RolloutState
    ledger: Ledger
    generation: int
    version: int
    effective: EffectiveConfig | None = None
    #: `effective` as JSON, encoded once per version: every long-poll a change wakes
    #: answers with these same bytes (at 1,000 sidecars, one encoding instead of 1,000).
    effective_json: bytes = b""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, float] = field(default_factory=dict)  # sidecar -> last contact
    polling: dict[str, int] = field(default_factory=dict)  # sidecar -> open long-polls
    #: Window stats since the last analysis, per pod: whose figures they are stays known.
    windows: dict[str, Windows] = field(default_factory=dict)
    #: pod -> (requests it may still report, when that was worked out): see `Hub.report`.
    credit: dict[str, tuple[float, float]] = field(default_factory=dict)
    joined: dict[str, float] = field(default_factory=dict)  # pod -> its first authenticated call
    analysed_at: float = 0.0
    judgement: Judgement | None = None
    last_command: str = ""
    command_record: Any = None  # status.lastCommand: the last command's id, verb and result
    written_status: dict[str, object] = field(default_factory=dict)
    #: Windows that began under an older config version are not judged: they hold
    #: answers from before the last weight change, retry or promote (`reconcile.tick`).
    judge_from: int = 0
    #: Bumped to have every sidecar half-open its open breakers (a retry after an outage).
    breaker_epoch: int = 0
    #: Bumped by `cache-flush`; kept in status.cacheEpoch, since sidecars key entries by it.
    cache_epoch: int = 0
    #: Providers `disable-provider` took out (published as enabled=false), in status too.
    disabled_providers: frozenset[str] = frozenset()
    history: list[dict[str, object]] = field(default_factory=list)  # see reconcile.HISTORY_LENGTH
    heartbeat: float = float("-inf")  # when status.operatorHeartbeat was last moved on
    #: (when, len(seen) then, how many were connected): see `Hub.connected_count`.
    counted: tuple[float, int, int] = (float("-inf"), -1, 0)


class Implausible(ValueError):
    """A window report claims more than its pod could have served (the caller gets 400)."""


def _shadow(spec: LLMRolloutSpec, state: RolloutState) -> Shadow | None:
    """The shadow share the state is at, with the spec's `maxConcurrent` (None: never set)."""
    configured = spec.traffic.shadow
    if configured is None:
        return None if state.shadow_percent == 0 else Shadow(percent=state.shadow_percent)
    return configured.model_copy(update={"percent": state.shadow_percent})


class Hub:
    def __init__(self, sidecar_ttl: float = 60.0, max_pod_rps: float = 5000.0) -> None:
        self.rollouts: dict[Key, Live] = {}
        self.sidecar_ttl = sidecar_ttl
        #: The most requests per second one sidecar is believed to serve (all arms). A
        #: report may count at most this times the seconds since that pod's last one.
        #: A sidecar serves about 1,600 a second on one core of the bench machine
        #: (docs/benchmarks.md); 500 refused a busy pod's real windows (`make soak` at 600/s).
        self.max_pod_rps = max_pod_rps
        self.started = asyncio.Event()  # set once the control channel listens
        #: Refused control-channel calls by (namespace, rollout, status): a metric.
        self.auth_failures: Counter[tuple[str, str, str]] = Counter()
        self.audit = AuditLog(None, "operator")
        #: Spans for reconciles and analyses; None: tracing is off (no OTLP endpoint).
        self.tracer: Tracer | None = None
        #: Whether this replica is the active one (`rollout_operator.peering`); a standby
        #: refuses the control channel and is not ready, so the Service avoids it.
        self.active = True
        #: Told each rollout's namespace when the hub first holds the rollout: the operator
        #: opens that namespace's pod watch then, before the rollout's sidecars call.
        self.on_namespace: Callable[[str], object] = lambda namespace: None

    def stand_by(self) -> None:
        """Forget every rollout: this replica lost the election.

        What it knew (ledger, windows, versions) is the other replica's to change now;
        kept, it would be written back over theirs if this one became active again. The
        long-polls are released so their sidecars reconnect (to the active replica).
        """
        self.active = False
        for live in self.rollouts.values():
            live.changed.set()
        self.rollouts.clear()

    def auth_failed(self, namespace: str, rollout: str, status: int, who: str, reason: str) -> None:
        """A control-channel call refused: counted, and in the audit trail with the caller."""
        self.auth_failures[namespace, rollout, str(status)] += 1
        self.audit.event("control.auth_failed", namespace=namespace, rollout=rollout,
                         status=status, caller=who, reason=reason)  # fmt: skip

    def connected(self, live: Live, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return sorted(
            s for s, at in live.seen.items()
            if live.polling.get(s, 0) > 0 or now - at < self.sidecar_ttl
        )  # fmt: skip

    def connected_count(self, live: Live, now: float) -> int:
        """How many sidecars are connected, counted at most a second ago.

        Every slice request divides the budget by this; counting (a pass over every
        sidecar) per request was a sixth of the operator's CPU at 1,000 sidecars asking
        every 5 s. A sidecar seen for the first time is counted at once; one falling
        silent leaves the count up to a second late, against a `sidecar_ttl` of a minute.
        """
        at, known, count = live.counted
        if now - at >= 1.0 or known != len(live.seen):
            count = len(self.connected(live, now))
            live.counted = (now, len(live.seen), count)
        return count

    def publish(self, live: Live) -> bool:
        """Recompute the effective config; on a change, bump the version and wake the polls."""
        spec = live.spec
        count = max(1, self.connected_count(live, time.time()))
        providers = [
            p.model_copy(update={"enabled": False}) if p.name in live.disabled_providers else p
            for p in spec.providers
        ]
        providers = [
            p
            if p.rate_limit is None
            else p.model_copy(
                update={
                    "rate_limit": p.rate_limit.model_copy(
                        update={
                            "requests_per_minute": rate_share(
                                p.rate_limit.requests_per_minute, count
                            ),
                            "tokens_per_minute": rate_share(p.rate_limit.tokens_per_minute, count),
                        }
                    )
                }
            )
            for p in providers
        ]
        traffic = spec.traffic.model_copy(
            update={"real_weight": live.state.real_weight, "shadow": _shadow(spec, live.state)}
        )
        effective_spec = spec.model_copy(update={"traffic": traffic, "providers": providers})
        if (
            live.effective is not None
            and live.effective.spec == effective_spec
            and live.effective.phase == live.state.phase
            and live.effective.breaker_epoch == live.breaker_epoch
            and live.effective.cache_epoch == live.cache_epoch
        ):
            return False
        live.version += 1
        live.effective = EffectiveConfig(
            version=live.version, phase=live.state.phase, spec=effective_spec,
            breaker_epoch=live.breaker_epoch, cache_epoch=live.cache_epoch,
        )  # fmt: skip
        live.effective_json = live.effective.model_dump_json(by_alias=True).encode()
        live.changed.set()
        live.changed = asyncio.Event()
        return True

    def report(self, live: Live, report: WindowReport, now: float) -> None:
        """Add a pod's window to the stats the next analysis judges, if it is plausible.

        Each pod earns `max_pod_rps` requests of credit per second since its first call
        (at most `sidecar_ttl` seconds' worth, one second's to start); a report spends
        credit for the requests it counts. So pushing often does not let one pod count
        more than it could have served, and a fabricated burst is refused with
        `Implausible` instead of steering the analysis.
        """
        joined = live.joined.get(report.sidecar, now)
        credit, at = live.credit.get(report.sidecar, (self.max_pod_rps, joined))
        credit = min(credit + (now - at) * self.max_pod_rps, self.max_pod_rps * self.sidecar_ttl)
        claimed = sum(arm.requests for arm in report.arms.values())
        if claimed > credit:
            raise Implausible(
                f"{claimed} requests is more than this sidecar could have served since its "
                f"last report ({credit:.0f} at {self.max_pod_rps:g} requests/s); window refused"
            )
        live.seen[report.sidecar] = now
        live.credit[report.sidecar] = (credit - claimed, now)
        if report.arms and report.config_version >= live.judge_from:
            live.windows.setdefault(report.sidecar, Windows()).add(report)
