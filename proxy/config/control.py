"""The control channel's messages: what the operator sends sidecars and what they send back.

Both halves import these models, so the wire format lives next to the spec it
carries and cannot drift between the operator and the sidecar. Pure: pydantic only.

Latency travels as counts in fixed buckets rather than raw samples so that the
operator can merge windows from any number of sidecars and still read a p95.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import Field, StringConstraints, model_validator

from proxy.config.model import LLMRolloutSpec, Model

Arm = Literal["real", "mock"]
#: A provider's name as a window key (`Provider.name` bounds it the same way).
ProviderName = Annotated[str, StringConstraints(min_length=1, max_length=63)]

#: Upper bounds (ms) of the latency buckets; one more bucket counts everything above.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    10000,
    30000,
    60000,
    120000,
)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class QualityWindow(Model):
    """Answer quality over a window (see `proxy.quality`); each figure a count or a sum."""

    scored: int = Field(default=0, ge=0, description="answers scored by the rule-based scorer")
    score_sum: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="sum of their 0-5 scores"
    )
    rejections: int = Field(default=0, ge=0, description="scored answers with a hard failure")
    brand_checked: int = Field(default=0, ge=0, description="answers with a known brand")
    brand_compliant: int = Field(default=0, ge=0, description="of those, compliant")
    judged: int = Field(default=0, ge=0, description="answers scored by the LLM judge")
    judge_sum: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="sum of their 1-5 judge scores"
    )

    @model_validator(mode="after")
    def _consistent(self) -> QualityWindow:
        """Sums within their scales, parts within their wholes (see `ArmWindow._consistent`)."""
        _require(self.score_sum <= 5 * self.scored, "quality.scoreSum is above 5 x scored")
        _require(self.judge_sum <= 5 * self.judged, "quality.judgeSum is above 5 x judged")
        _require(self.rejections <= self.scored, "quality.rejections is above scored")
        _require(self.brand_compliant <= self.brand_checked, "brandCompliant is above brandChecked")
        return self

    def merged(self, other: QualityWindow) -> QualityWindow:
        return QualityWindow(
            scored=self.scored + other.scored,
            score_sum=self.score_sum + other.score_sum,
            rejections=self.rejections + other.rejections,
            brand_checked=self.brand_checked + other.brand_checked,
            brand_compliant=self.brand_compliant + other.brand_compliant,
            judged=self.judged + other.judged,
            judge_sum=self.judge_sum + other.judge_sum,
        )


class ArmWindow(Model):
    """One arm's requests during one window of one sidecar (or merged across sidecars)."""

    requests: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0, description="answers with status 429 or >= 500")
    latency_buckets: list[int] = Field(
        default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1),
        min_length=len(LATENCY_BOUNDS_MS) + 1,
        max_length=len(LATENCY_BOUNDS_MS) + 1,
        description="request counts per LATENCY_BOUNDS_MS bucket, plus one overflow bucket",
    )
    latency_max_ms: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    cost_usd: float = Field(default=0.0, ge=0, alias="costUSD", allow_inf_nan=False)
    metric_sums: dict[str, float] = Field(
        default_factory=dict,
        max_length=64,
        description="other per-request metrics, summed; judged as means",
    )
    quality: QualityWindow = Field(default_factory=QualityWindow)
    shadow_requests: int = Field(
        default=0, ge=0, description="of `requests`, shadow copies (real arm only)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ArmWindow:
        """Refuse counts that cannot all be true: a window is believed only when it adds up.

        The operator judges promotion and rollback on these figures, so a report whose
        parts exceed their whole (errors or shadows above requests, a latency histogram
        that does not sum to requests) or that is not finite is refused.
        """
        _require(
            sum(self.latency_buckets) == self.requests, "latencyBuckets do not sum to requests"
        )
        _require(all(count >= 0 for count in self.latency_buckets), "a latency bucket is negative")
        _require(self.errors <= self.requests, "errors is above requests")
        _require(self.shadow_requests <= self.requests, "shadowRequests is above requests")
        # Quality counts are not bounded by this window's requests: an answer is scored
        # (and judged) after it is counted, so its score can land in the next window.
        # Their own consistency (sums, rejections, compliance) is checked with them.
        _require(
            all(math.isfinite(value) for value in self.metric_sums.values()),
            "metricSums holds a value that is not a finite number",
        )
        return self

    def merged(self, other: ArmWindow) -> ArmWindow:
        pairs = zip(self.latency_buckets, other.latency_buckets, strict=True)
        sums = dict(self.metric_sums)
        for name, value in other.metric_sums.items():
            sums[name] = sums.get(name, 0.0) + value
        return ArmWindow(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            latency_buckets=[a + b for a, b in pairs],
            latency_max_ms=max(self.latency_max_ms, other.latency_max_ms),
            cost_usd=self.cost_usd + other.cost_usd,
            metric_sums=sums,
            quality=self.quality.merged(other.quality),
            shadow_requests=self.shadow_requests + other.shadow_requests,
        )

    def latency_percentile_ms(self, q: float) -> float:
        """The bucket bound under which a fraction `q` of requests fell (conservative)."""
        if self.requests == 0:
            return 0.0
        rank = q * sum(self.latency_buckets)
        seen = 0
        for index, count in enumerate(self.latency_buckets):
            seen += count
            if seen >= rank and count:
                if index < len(LATENCY_BOUNDS_MS):
                    return min(float(LATENCY_BOUNDS_MS[index]), self.latency_max_ms)
                return self.latency_max_ms
        return self.latency_max_ms


K = TypeVar("K")


def merge_windows(kept: Mapping[K, ArmWindow], more: Mapping[K, ArmWindow]) -> dict[K, ArmWindow]:
    """Two sets of windows (per arm or per provider) as one: the same key's add up."""
    merged = dict(kept)
    for key, window in more.items():
        merged[key] = merged[key].merged(window) if key in merged else window
    return merged


class WindowReport(Model):
    """What a sidecar POSTs to `.../stats` every window."""

    sidecar: str = Field(min_length=1, description="pod name (or any id unique per sidecar)")
    config_version: int = Field(
        ge=0,
        description="the config version in force when the window began (the operator "
        "ignores windows older than its last weight change, retry or promote)",
    )
    arms: dict[Arm, ArmWindow] = Field(default_factory=dict)
    providers: dict[ProviderName, ArmWindow] = Field(
        default_factory=dict,
        max_length=64,
        description="the real arm split by the provider each request was routed to "
        "(`proxy.stats`); absent from sidecars older than per-provider analysis",
    )

    @model_validator(mode="after")
    def _providers_within_real(self) -> WindowReport:
        """The providers' requests are a part of the real arm's (cached answers are not
        counted per provider), so more than the real arm cannot be true."""
        real = self.arms.get("real")
        split = sum(window.requests for window in self.providers.values())
        _require(
            split <= (real.requests if real else 0), "providers' requests exceed the real arm's"
        )
        return self


class EffectiveConfig(Model):
    """What a long-poll on `.../config` returns: the spec a sidecar applies as it is."""

    version: int = Field(ge=1, description="bumps on every change; long-poll with ?after=VERSION")
    phase: str
    breaker_epoch: int = Field(
        default=0,
        ge=0,
        description="bumps when the operator wants providers tried again (a retry after an "
        "outage): sidecars half-open every open circuit breaker",
    )
    cache_epoch: int = Field(
        default=0,
        ge=0,
        description="bumps on `kubectl llmrollout cache-flush`: cached answers stored under an "
        "earlier epoch are never served again (the epoch is part of every cache key)",
    )
    spec: LLMRolloutSpec = Field(
        description="the rollout's spec with traffic.realWeight set to the operator's current "
        "weight, forceMock set on abort, and each provider's rateLimit divided by the number "
        "of connected sidecars"
    )


class AllowanceRequest(Model):
    """A sidecar settling or renewing a lease, and asking for the next slice.

    `spentUSD` is what the sidecar spent under `leaseId` since it last reported that
    lease. `keepUSD` is how much of the lease it keeps (calls in flight plus money it
    still means to spend): the lease is renewed at that size for another TTL, or
    ends when it is 0. `wantSlice: false` only settles or renews. `reportId` names this
    report (required with `leaseId`): the operator books a report id once, so a sidecar
    resending a report whose answer it lost (same id, same figures) is never booked twice.
    """

    sidecar: str = Field(min_length=1)
    lease_id: str | None = Field(
        default=None, max_length=64, description="the lease being settled, if any"
    )
    report_id: str = Field(default="", max_length=64, description="unique per report")
    spent_usd: Decimal = Field(default=Decimal(0), ge=0, alias="spentUSD")
    keep_usd: Decimal = Field(default=Decimal(0), ge=0, alias="keepUSD")
    want_slice: bool = True


class Grant(Model):
    """A budget slice leased to one sidecar; unspent money returns when the lease ends."""

    lease_id: str
    slice_usd: Decimal = Field(ge=0, alias="sliceUSD")
    ttl_seconds: float = Field(gt=0)
    kept_usd: Decimal = Field(
        default=Decimal(0),
        ge=0,
        alias="keptUSD",
        description="what is still leased under the settled lease (0: it ended, or had expired)",
    )
