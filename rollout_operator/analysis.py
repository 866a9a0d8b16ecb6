"""Judging one analysis window: the real arm against each metric's thresholds.

Pure. Input: the window stats the sidecars pushed, merged per arm. Output: a
verdict and, per metric, the measured value for both arms (the mock arm is the
baseline a person compares against), the threshold, and whether it held.
Too few real requests is `Inconclusive`: no verdict is better than a guess.

A metric may also be bounded relative to the mock arm: `minVsMock: -0.2` fails
when real < mock - 0.2 in the same window. Without a mock-arm value (no mock
traffic in the window) that bound is inconclusive, never passed on trust.

Shadow windows. During `setShadow` steps the real arm's figures come from shadow
copies: requests the sidecar also sent to the provider in the background while
the client got the mock's answer (`ArmWindow.shadow_requests`). They are real
provider calls, scored, priced and timed like live ones, so they count toward
`minRequests` and every metric exactly as live real requests do -- a rollout at
0 % real with 20 % shadow is judged on the copies alone, and `setShadow` steps
are gated by the same analysis before a user sees a real answer. The mock arm
then holds every client request, which is what `minVsMock` compares against.

Per provider. The real arm is also judged provider by provider (the sidecars'
`WindowReport.providers`: requests by the provider they were routed to, a fallback
counted as that provider's error, see `proxy.stats`), so a `traffic.providers` split
is an A/B: each provider with at least `minRequests` requests in the window is
measured against every metric read from the windows (a Prometheus query measures the
arm, not a provider), `minVsMock` against the same mock arm. A provider breaking a
bound fails the analysis, naming it, even when the arm as a whole holds -- fallback
to a healthy provider hides a failing one from the arm's figures. A provider with
fewer requests, or a metric it has no value for, is left to the arm's verdict: the
split only ever adds failures, never an Inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from proxy.config import Arm, ArmWindow, WindowReport, merge_windows
from proxy.config.model import Analysis, AnalysisMetric
from rollout_operator.steps import Verdict

#: Built-in metric names and how each is read from a window.
BUILTIN = (
    "error-rate",
    "latency-p95-ms",
    "cost-per-request-usd",
    "quality-score",
    "brand-compliance",
    "rejection-rate",
    "judge-score",
)


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def measure(name: str, window: ArmWindow) -> float | None:
    """The metric's value over a window, or None if the window has no requests."""
    if window.requests == 0:
        return None
    if name == "error-rate":
        return window.errors / window.requests
    if name == "latency-p95-ms":
        return window.latency_percentile_ms(0.95)
    if name == "cost-per-request-usd":
        return window.cost_usd / window.requests
    quality = window.quality
    if name == "quality-score":
        return _ratio(quality.score_sum, quality.scored)
    if name == "rejection-rate":
        return _ratio(quality.rejections, quality.scored)
    if name == "brand-compliance":
        return _ratio(quality.brand_compliant, quality.brand_checked)
    if name == "judge-score":
        return _ratio(quality.judge_sum, quality.judged)
    total = window.metric_sums.get(name)
    return None if total is None else total / window.requests


#: The quality figures `kubectl llmrollout get` shows per arm, whether or not they are gated.
QUALITY = ("quality-score", "brand-compliance", "rejection-rate", "judge-score")


@dataclass(frozen=True, slots=True)
class Measurement:
    metric: str
    real: float | None
    mock: float | None
    max: float | None
    min: float | None
    ok: bool | None  # None: not measured
    min_vs_mock: float | None = None

    def violations(self) -> list[str]:
        """Each bound the real value broke, with the threshold it broke."""
        if self.real is None:
            return []
        out = []
        if self.max is not None and self.real > self.max:
            out.append(f"> max {self.max:g}")
        if self.min is not None and self.real < self.min:
            out.append(f"< min {self.min:g}")
        if self.min_vs_mock is not None and self.mock is not None:
            floor = self.mock + self.min_vs_mock
            if self.real < floor:
                out.append(f"< mock {self.mock:g} {self.min_vs_mock:+g} = {floor:g} (minVsMock)")
        return out

    def describe(self, provider: str | None = None) -> str:
        mock = "n/a" if self.mock is None else f"{self.mock:g}"
        bounds = " and ".join(self.violations())
        where = "real arm" if provider is None else f"real arm, provider {provider}"
        return f"{self.metric} {self.real:g} {bounds} ({where}; mock arm {mock})"

    def to_status(self) -> dict[str, Any]:
        return {"name": self.metric, "real": self.real, "mock": self.mock, "max": self.max,
                "min": self.min, "minVsMock": self.min_vs_mock, "ok": self.ok}  # fmt: skip


def quality(window: ArmWindow) -> dict[str, Any]:
    """One arm's quality figures (None where nothing was scored) and its shadow volume."""
    figures: dict[str, Any] = {name: measure(name, window) for name in QUALITY}
    return {**figures, "scored": window.quality.scored, "judged": window.quality.judged,
            "shadowRequests": window.shadow_requests}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProviderJudgement:
    """One provider's share of the real arm, measured like the arm (see the module doc)."""

    provider: str
    requests: int
    measurements: tuple[Measurement, ...]  # empty: fewer than minRequests, not judged

    def failed(self) -> list[Measurement]:
        return [m for m in self.measurements if m.ok is False]

    def to_status(self) -> dict[str, Any]:
        return {"name": self.provider, "requests": self.requests,
                "judged": bool(self.measurements),
                "metrics": [m.to_status() for m in self.measurements]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    detail: str
    requests: dict[Arm, int]
    measurements: tuple[Measurement, ...]
    quality: dict[Arm, dict[str, Any]] = field(default_factory=dict)
    providers: tuple[ProviderJudgement, ...] = ()

    def to_status(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "detail": self.detail,
            "requests": dict(self.requests),
            "metrics": [m.to_status() for m in self.measurements],
            "quality": dict(self.quality),
            "providers": [p.to_status() for p in self.providers],
        }


@dataclass(slots=True)
class Windows:
    """One sidecar's windows since the last analysis: per arm, and the real arm per provider."""

    arms: dict[Arm, ArmWindow] = field(default_factory=dict)
    providers: dict[str, ArmWindow] = field(default_factory=dict)

    def add(self, report: WindowReport) -> None:
        self.arms = merge_windows(self.arms, report.arms)
        self.providers = merge_windows(self.providers, report.providers)


def merge(windows: list[dict[Arm, ArmWindow]]) -> dict[Arm, ArmWindow]:
    """Windows from many sidecars as one window per arm."""
    merged: dict[Arm, ArmWindow] = {"real": ArmWindow(), "mock": ArmWindow()}
    for window in windows:
        merged = merge_windows(merged, window)
    return merged


def merge_providers(windows: list[dict[str, ArmWindow]]) -> dict[str, ArmWindow]:
    """The real arm's windows from many sidecars as one window per provider."""
    merged: dict[str, ArmWindow] = {}
    for window in windows:
        merged = merge_windows(merged, window)
    return merged


def _check(
    metric: AnalysisMetric, real: ArmWindow, mock: ArmWindow, external: dict[str, float | None]
) -> Measurement:
    if metric.prometheus is not None:  # the real arm's value comes from the query
        value = external.get(metric.name)
        return _bounded(metric, value, None)
    return _bounded(metric, measure(metric.name, real), measure(metric.name, mock))


def _bounded(metric: AnalysisMetric, value: float | None, mock: float | None) -> Measurement:
    """Broken bounds fail at once; a minVsMock without a mock value leaves it unmeasured."""
    measurement = Measurement(metric.name, value, mock, metric.max, metric.min, None,
                              metric.min_vs_mock)  # fmt: skip
    if value is None:
        return measurement
    if measurement.violations():
        return replace(measurement, ok=False)
    if metric.min_vs_mock is not None and mock is None:
        return measurement
    return replace(measurement, ok=True)


def judge_providers(
    analysis: Analysis, providers: dict[str, ArmWindow], mock: ArmWindow
) -> tuple[ProviderJudgement, ...]:
    """Each provider's share of the real arm against the metrics the windows measure."""
    metrics = [m for m in analysis.metrics if m.prometheus is None]
    return tuple(
        ProviderJudgement(name, window.requests, tuple(
            _bounded(m, measure(m.name, window), measure(m.name, mock)) for m in metrics
        ) if window.requests >= analysis.min_requests else ())
        for name, window in sorted(providers.items())
    )  # fmt: skip


def judge(
    analysis: Analysis,
    arms: dict[Arm, ArmWindow],
    external: dict[str, float | None] | None = None,
    providers: dict[str, ArmWindow] | None = None,
) -> Judgement:
    """The verdict on one window; `external` holds the Prometheus metrics' values by name,
    `providers` the real arm per provider (absent when the sidecars predate it)."""
    real, mock = arms.get("real", ArmWindow()), arms.get("mock", ArmWindow())
    requests: dict[Arm, int] = {"real": real.requests, "mock": mock.requests}
    measurements = tuple(_check(m, real, mock, external or {}) for m in analysis.metrics)
    figures: dict[Arm, dict[str, Any]] = {"real": quality(real), "mock": quality(mock)}
    split = judge_providers(analysis, providers or {}, mock)

    def judgement(verdict: Verdict, detail: str) -> Judgement:
        return Judgement(verdict, detail, requests, measurements, figures, split)

    if real.requests < analysis.min_requests:
        detail = f"{real.requests} real requests, fewer than minRequests {analysis.min_requests}"
        if real.shadow_requests:
            detail += f" ({real.shadow_requests} of them shadow copies)"
        return judgement("Inconclusive", detail)
    failed = [m.describe() for m in measurements if m.ok is False]
    failed += [m.describe(p.provider) for p in split for m in p.failed()]
    if failed:
        return judgement("Failed", "; ".join(failed))
    unmeasured = [m for m in measurements if m.ok is None]
    if unmeasured:
        unreported = [m.metric for m in unmeasured if m.real is None]
        no_mock = [m.metric for m in unmeasured if m.real is not None]
        parts = [f"no sidecar reported {', '.join(unreported)}"] if unreported else []
        if no_mock:
            parts.append(f"no mock-arm value to compare {', '.join(no_mock)} with (minVsMock)")
        return judgement("Inconclusive", "; ".join(parts))
    judged = [p.provider for p in split if p.measurements]
    each = f", as do providers {', '.join(judged)}" if judged else ""
    return judgement("Passed", f"{len(measurements)} metric(s) within thresholds{each}")
