"""Judging one analysis window: the real arm against each metric's thresholds.

Pure. Input: the window stats the sidecars pushed, merged per arm. Output: a
verdict and, per metric, the measured value for both arms (the mock arm is the
baseline a person compares against), the threshold, and whether it held.
Too few real requests is `Inconclusive`: no verdict is better than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.config import Arm, ArmWindow
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


@dataclass(frozen=True, slots=True)
class Measurement:
    metric: str
    real: float | None
    mock: float | None
    max: float | None
    min: float | None
    ok: bool | None  # None: not measured

    def describe(self) -> str:
        bound = (
            f"> max {self.max:g}"
            if self.max is not None and self.real is not None and self.real > self.max
            else f"< min {self.min:g}"
        )
        mock = "n/a" if self.mock is None else f"{self.mock:g}"
        return f"{self.metric} {self.real:g} {bound} (real arm; mock arm {mock})"

    def to_status(self) -> dict[str, Any]:
        return {"name": self.metric, "real": self.real, "mock": self.mock, "max": self.max,
                "min": self.min, "ok": self.ok}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    detail: str
    requests: dict[Arm, int]
    measurements: tuple[Measurement, ...]

    def to_status(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "detail": self.detail,
            "requests": dict(self.requests),
            "metrics": [m.to_status() for m in self.measurements],
        }


def merge(windows: list[dict[Arm, ArmWindow]]) -> dict[Arm, ArmWindow]:
    """Windows from many sidecars as one window per arm."""
    merged: dict[Arm, ArmWindow] = {"real": ArmWindow(), "mock": ArmWindow()}
    for window in windows:
        for arm, stats in window.items():
            merged[arm] = merged[arm].merged(stats)
    return merged


def _check(
    metric: AnalysisMetric, real: ArmWindow, mock: ArmWindow, external: dict[str, float | None]
) -> Measurement:
    if metric.prometheus is not None:  # the real arm's value comes from the query
        value = external.get(metric.name)
        return _bounded(metric, value, None)
    return _bounded(metric, measure(metric.name, real), measure(metric.name, mock))


def _bounded(metric: AnalysisMetric, value: float | None, mock: float | None) -> Measurement:
    ok: bool | None = None
    if value is not None:
        ok = (metric.max is None or value <= metric.max) and (
            metric.min is None or value >= metric.min
        )
    return Measurement(metric.name, value, mock, metric.max, metric.min, ok)


def judge(
    analysis: Analysis, arms: dict[Arm, ArmWindow], external: dict[str, float | None] | None = None
) -> Judgement:
    """The verdict on one window; `external` holds the Prometheus metrics' values by name."""
    real, mock = arms.get("real", ArmWindow()), arms.get("mock", ArmWindow())
    requests: dict[Arm, int] = {"real": real.requests, "mock": mock.requests}
    measurements = tuple(_check(m, real, mock, external or {}) for m in analysis.metrics)
    if real.requests < analysis.min_requests:
        detail = f"{real.requests} real requests, fewer than minRequests {analysis.min_requests}"
        return Judgement("Inconclusive", detail, requests, measurements)
    failed = [m for m in measurements if m.ok is False]
    if failed:
        return Judgement("Failed", "; ".join(m.describe() for m in failed), requests, measurements)
    unmeasured = [m.metric for m in measurements if m.ok is None]
    if unmeasured:
        detail = f"no sidecar reported {', '.join(unmeasured)}"
        return Judgement("Inconclusive", detail, requests, measurements)
    return Judgement("Passed", f"{len(measurements)} metric(s) within thresholds", requests,
                     measurements)  # fmt: skip
