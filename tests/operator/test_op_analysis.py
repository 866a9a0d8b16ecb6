"""Analysis verdicts from merged sidecar windows."""

from __future__ import annotations

from proxy.config import ArmWindow
from proxy.config.model import Analysis
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
