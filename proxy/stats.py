"""Per-arm window statistics a sidecar collects for the operator's analysis.

Pure and cheap on the hot path: `record` bumps a few counters; `drain` hands the
window over (as the control channel's `ArmWindow`) and starts the next one. The
operator merges windows from every sidecar, so nothing here is a percentile yet.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from proxy.config import LATENCY_BOUNDS_MS, Arm, ArmWindow, QualityWindow


def is_error(status: int) -> bool:
    """A provider-side failure as analysis counts it: throttled or a server error."""
    return status == 429 or status >= 500


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    latency_max_ms: float = 0.0
    cost_usd: float = 0.0
    scored: int = 0
    score_sum: float = 0.0
    rejections: int = 0
    brand_checked: int = 0
    brand_compliant: int = 0
    shadow_requests: int = 0
    judged: int = 0
    judge_sum: float = 0.0


class WindowStats:
    """Counters for the current window, one set per arm."""

    def __init__(self) -> None:
        self._arms: dict[Arm, _Counters] = {}

    def record(
        self, arm: Arm, status: int, seconds: float, cost_usd: float = 0.0, shadow: bool = False
    ) -> None:
        """One answer; `shadow`: a copy of a mock-routed request (real arm), see
        `proxy.server.shadow_traffic`. It counts like any real request, and apart too."""
        counters = self._counters(arm)
        millis = seconds * 1000.0
        counters.requests += 1
        counters.errors += is_error(status)
        counters.buckets[bisect_left(LATENCY_BOUNDS_MS, millis)] += 1
        counters.latency_max_ms = max(counters.latency_max_ms, millis)
        counters.cost_usd += cost_usd
        counters.shadow_requests += shadow

    def judged(self, arm: Arm, score: float) -> None:
        """One answer of `arm` scored `score` (1-5) by the LLM judge, in this window."""
        counters = self._counters(arm)
        counters.judged += 1
        counters.judge_sum += score

    def _counters(self, arm: Arm) -> _Counters:
        counters = self._arms.get(arm)
        if counters is None:
            counters = self._arms[arm] = _Counters()
        return counters

    def record_quality(
        self, arm: Arm, score: float, rejected: bool, brand_compliant: bool | None
    ) -> None:
        """One scored answer of `arm` (`proxy.quality`; a shadow copy counts as the real
        arm). `brand_compliant` is None when the request named no brand."""
        counters = self._counters(arm)
        counters.scored += 1
        counters.score_sum += score
        counters.rejections += rejected
        if brand_compliant is not None:
            counters.brand_checked += 1
            counters.brand_compliant += brand_compliant

    def drain(self) -> dict[Arm, ArmWindow]:
        """The window so far, per arm; the counters restart from zero."""
        arms, self._arms = self._arms, {}
        return {
            arm: ArmWindow(
                requests=c.requests,
                errors=c.errors,
                latency_buckets=c.buckets,
                latency_max_ms=c.latency_max_ms,
                cost_usd=c.cost_usd,
                quality=QualityWindow(
                    scored=c.scored,
                    score_sum=c.score_sum,
                    rejections=c.rejections,
                    brand_checked=c.brand_checked,
                    brand_compliant=c.brand_compliant,
                    judged=c.judged,
                    judge_sum=c.judge_sum,
                ),
                shadow_requests=c.shadow_requests,
            )
            for arm, c in arms.items()
        }
