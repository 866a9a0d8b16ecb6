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
from dataclasses import dataclass, field
from typing import Any

from proxy.config import Arm, ArmWindow, EffectiveConfig, LLMRolloutSpec, WindowReport
from proxy.config.model import Shadow
from rollout_operator.analysis import Judgement
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
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, float] = field(default_factory=dict)  # sidecar -> last contact
    polling: dict[str, int] = field(default_factory=dict)  # sidecar -> open long-polls
    windows: list[dict[Arm, ArmWindow]] = field(default_factory=list)
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
    history: list[dict[str, object]] = field(default_factory=list)  # see reconcile.HISTORY_LENGTH
    heartbeat: float = float("-inf")  # when status.operatorHeartbeat was last moved on


def _shadow(spec: LLMRolloutSpec, state: RolloutState) -> Shadow | None:
    """The shadow share the state is at, with the spec's `maxConcurrent` (None: never set)."""
    configured = spec.traffic.shadow
    if configured is None:
        return None if state.shadow_percent == 0 else Shadow(percent=state.shadow_percent)
    return configured.model_copy(update={"percent": state.shadow_percent})


class Hub:
    def __init__(self, sidecar_ttl: float = 60.0) -> None:
        self.rollouts: dict[Key, Live] = {}
        self.sidecar_ttl = sidecar_ttl
        self.started = asyncio.Event()  # set once the control channel listens

    def connected(self, live: Live, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return sorted(
            s for s, at in live.seen.items()
            if live.polling.get(s, 0) > 0 or now - at < self.sidecar_ttl
        )  # fmt: skip

    def publish(self, live: Live) -> bool:
        """Recompute the effective config; on a change, bump the version and wake the polls."""
        spec = live.spec
        count = max(1, len(self.connected(live)))
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
            for p in spec.providers
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
        ):
            return False
        live.version += 1
        live.effective = EffectiveConfig(
            version=live.version, phase=live.state.phase, spec=effective_spec,
            breaker_epoch=live.breaker_epoch,
        )  # fmt: skip
        live.changed.set()
        live.changed = asyncio.Event()
        return True

    def report(self, live: Live, report: WindowReport, now: float) -> None:
        live.seen[report.sidecar] = now
        if report.arms and report.config_version >= live.judge_from:
            live.windows.append(dict(report.arms))
