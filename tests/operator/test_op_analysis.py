"""Analysis verdicts from merged sidecar windows."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.config import ArmWindow, QualityWindow
from proxy.config.model import Analysis, AnalysisMetric
from proxy.stats import WindowStats
from rollout_operator.analysis import judge, merge

ANALYSIS = Analysis.model_validate(
    {
        "minRequests": 10,
        "metrics": [{"name": "error-rate", "max": 0.05}, {"name": "latency-p95-ms", "max": 1000}],
    }
)


def window(real_ok: int, real_err: int, seconds: float = 0.05) -> dict[str, ArmWindow]:
    stats = WindowStats()
    for _ in range(real_ok):
        stats.record("real", 200, seconds)
    for _ in range(real_err):
        stats.record("real", 503, seconds)
    for _ in range(20):
        stats.record("mock", 200, 0.4)
    return stats.drain()  # type: ignore[return-value]


def test_healthy_window_passes() -> None:
    result = judge(ANALYSIS, merge([window(30, 0), window(30, 1)]))
    assert result.verdict == "Passed"
    assert result.requests == {"real": 61, "mock": 40}


def test_error_rate_over_threshold_fails_naming_metric_threshold_and_values() -> None:
    result = judge(ANALYSIS, merge([window(10, 10)]))
    assert result.verdict == "Failed"
    assert result.detail == "error-rate 0.5 > max 0.05 (real arm; mock arm 0)"


def test_slow_real_arm_fails_on_p95() -> None:
    result = judge(ANALYSIS, merge([window(20, 0, seconds=2.5)]))
    assert result.verdict == "Failed"
    assert "latency-p95-ms 2500 > max 1000" in result.detail


def test_too_few_requests_is_inconclusive() -> None:
    result = judge(ANALYSIS, merge([window(3, 3)]))
    assert result.verdict == "Inconclusive"
    assert "fewer than minRequests 10" in result.detail


def test_min_threshold_and_reported_metric() -> None:
    analysis = Analysis.model_validate({"minRequests": 1, "metrics": [{"name": "quality",
                                                                      "min": 0.8}]})  # fmt: skip
    real = ArmWindow(requests=4, latency_buckets=[4] + [0] * 17, metric_sums={"quality": 2.0})
    result = judge(analysis, {"real": real, "mock": ArmWindow()})
    assert result.verdict == "Failed"
    assert "quality 0.5 < min 0.8" in result.detail


def test_drain_starts_a_new_window() -> None:
    stats = WindowStats()
    stats.record("real", 200, 0.01)
    assert stats.drain()["real"].requests == 1
    assert stats.drain() == {}


QUALITY = Analysis.model_validate(
    {
        "minRequests": 10,
        "metrics": [
            {"name": "quality-score", "min": 4.0, "minVsMock": -0.2},
            {"name": "brand-compliance", "min": 0.95},
            {"name": "rejection-rate", "max": 0.05},
        ],
    }
)


def scored(requests: int, score: float, rejections: int = 0, compliant: int | None = None,
           shadow: int = 0) -> ArmWindow:  # fmt: skip
    """An arm whose every answer was scored `score`, all with a known brand."""
    return ArmWindow(
        requests=requests,
        latency_buckets=[requests] + [0] * 17,
        shadow_requests=shadow,
        quality=QualityWindow(
            scored=requests, score_sum=score * requests, rejections=rejections,
            brand_checked=requests,
            brand_compliant=requests if compliant is None else compliant,
        ),
    )  # fmt: skip


def test_good_answers_pass_every_quality_metric() -> None:
    result = judge(QUALITY, {"real": scored(20, 4.6), "mock": scored(80, 4.7)})
    assert result.verdict == "Passed"
    assert result.quality["real"]["quality-score"] == 4.6
    assert result.quality["mock"]["brand-compliance"] == 1.0


def test_real_arm_below_the_mock_by_more_than_min_vs_mock_fails_naming_both_values() -> None:
    # 4.3 clears the absolute bar (4.0) but is 0.4 below the mock arm in the same window.
    result = judge(QUALITY, {"real": scored(20, 4.3), "mock": scored(80, 4.7)})
    assert result.verdict == "Failed"
    assert result.detail == (
        "quality-score 4.3 < mock 4.7 -0.2 = 4.5 (minVsMock) (real arm; mock arm 4.7)"
    )
    (score, *_) = result.to_status()["metrics"]
    assert score == {"name": "quality-score", "real": 4.3, "mock": 4.7, "max": None,
                     "min": 4.0, "minVsMock": -0.2, "ok": False}  # fmt: skip


def test_min_vs_mock_without_mock_traffic_is_inconclusive_not_passed() -> None:
    result = judge(QUALITY, {"real": scored(20, 4.9), "mock": ArmWindow()})
    assert result.verdict == "Inconclusive"
    assert result.detail == "no mock-arm value to compare quality-score with (minVsMock)"


def test_an_absolute_bar_still_fails_without_mock_traffic() -> None:
    result = judge(QUALITY, {"real": scored(20, 3.0), "mock": ArmWindow()})
    assert result.verdict == "Failed"
    assert result.detail.startswith("quality-score 3 < min 4 (real arm; mock arm n/a)")


def test_rejections_and_brand_violations_fail_on_their_own_metrics() -> None:
    real = scored(20, 4.6, rejections=2, compliant=18)
    result = judge(QUALITY, {"real": real, "mock": scored(80, 4.7)})
    assert result.verdict == "Failed"
    assert "brand-compliance 0.9 < min 0.95" in result.detail
    assert "rejection-rate 0.1 > max 0.05" in result.detail


def test_a_shadow_only_real_arm_is_judged_on_its_copies() -> None:
    """At 0 % real with shadow on, every real request is a shadow copy: they count toward
    minRequests and are judged like live ones."""
    few = judge(QUALITY, {"real": scored(6, 4.6, shadow=6), "mock": scored(30, 4.7)})
    assert few.verdict == "Inconclusive"
    assert few.detail == "6 real requests, fewer than minRequests 10 (6 of them shadow copies)"
    bad = judge(QUALITY, {"real": scored(12, 2.0, shadow=12), "mock": scored(60, 4.7)})
    assert bad.verdict == "Failed"
    assert bad.quality["real"]["shadowRequests"] == 12


def test_unscored_answers_leave_the_quality_metrics_unmeasured() -> None:
    result = judge(
        QUALITY,
        {"real": ArmWindow(requests=20, latency_buckets=[20] + [0] * 17), "mock": scored(20, 4.7)},
    )
    assert result.verdict == "Inconclusive"
    assert result.detail == ("no sidecar reported quality-score, brand-compliance, rejection-rate")


def test_min_vs_mock_on_a_prometheus_metric_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="a prometheus metric has no mock arm"):
        AnalysisMetric.model_validate(
            {"name": "success", "minVsMock": -0.1,
             "prometheus": {"address": "http://prometheus:9090", "query": "up"}}
        )  # fmt: skip
