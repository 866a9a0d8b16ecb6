"""Per-provider analysis: the real arm judged provider by provider (pure, no sockets).

A `traffic.providers` split is an A/B: a provider failing its share of the real arm
fails the analysis by name even when fallback to a healthy one keeps the arm's own
figures clean.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.config import ArmWindow, QualityWindow, WindowReport
from proxy.config.model import Analysis
from proxy.stats import WindowStats
from rollout_operator.analysis import Windows, judge, merge, merge_providers
from rollout_operator.plugin import render

ANALYSIS = Analysis.model_validate(
    {
        "minRequests": 10,
        "metrics": [{"name": "error-rate", "max": 0.05}, {"name": "latency-p95-ms", "max": 1000}],
    }
)


def split_window(
    openai: int, anthropic: int, anthropic_falls_back: bool, mock: int = 20
) -> tuple[dict[str, ArmWindow], dict[str, ArmWindow]]:
    """One sidecar's window: `openai` requests answered by openai-primary; `anthropic`
    requests routed to anthropic-backup that openai-primary answered after a fallback
    (`anthropic_falls_back`) or that anthropic-backup answered itself."""
    stats = WindowStats()
    for _ in range(openai):
        stats.record("real", 200, 0.05, 0.001, provider="openai-primary")
    for _ in range(anthropic):
        stats.record("real", 200, 0.2, 0.002, provider="anthropic-backup",
                     fell_back=anthropic_falls_back)  # fmt: skip
    for _ in range(mock):
        stats.record("mock", 200, 0.4)
    return stats.drain(), stats.drain_providers()  # type: ignore[return-value]


def test_a_provider_hidden_by_fallback_fails_the_analysis_by_name() -> None:
    arms, providers = split_window(35, 15, anthropic_falls_back=True)
    assert arms["real"].errors == 0, "fallback served every client: the arm looks healthy"
    result = judge(ANALYSIS, merge([arms]), providers=merge_providers([providers]))
    assert result.verdict == "Failed"
    assert (
        result.detail == "error-rate 1 > max 0.05 (real arm, provider anthropic-backup; mock arm 0)"
    )
    by_name = {p.provider: p for p in result.providers}
    assert by_name["anthropic-backup"].requests == 15
    assert [m.ok for m in by_name["openai-primary"].measurements] == [True, True]


def test_healthy_providers_pass_and_are_named() -> None:
    arms, providers = split_window(35, 15, anthropic_falls_back=False)
    result = judge(ANALYSIS, merge([arms]), providers=merge_providers([providers]))
    assert result.verdict == "Passed"
    assert "providers anthropic-backup, openai-primary" in result.detail
    status = result.to_status()["providers"]
    assert [(p["name"], p["requests"], p["judged"]) for p in status] == [
        ("anthropic-backup", 15, True), ("openai-primary", 35, True),
    ]  # fmt: skip
    assert status[0]["metrics"][0] == {"name": "error-rate", "real": 0.0, "mock": 0.0,
                                       "max": 0.05, "min": None, "minVsMock": None,
                                       "ok": True}  # fmt: skip


def test_a_provider_under_min_requests_is_shown_but_not_judged() -> None:
    arms, providers = split_window(40, 5, anthropic_falls_back=True)
    result = judge(ANALYSIS, merge([arms]), providers=merge_providers([providers]))
    assert result.verdict == "Passed", "5 failures of 45 are the arm's business, not a verdict"
    few = next(p for p in result.providers if p.provider == "anthropic-backup")
    assert few.requests == 5
    assert few.measurements == ()
    assert few.to_status()["judged"] is False


def test_providers_merge_across_sidecars_before_min_requests() -> None:
    """Six failing requests on each of two sidecars: twelve, over minRequests together."""
    first, second = split_window(20, 6, True), split_window(20, 6, True)
    result = judge(ANALYSIS, merge([first[0], second[0]]),
                   providers=merge_providers([first[1], second[1]]))  # fmt: skip
    assert result.verdict == "Failed"
    assert "provider anthropic-backup" in result.detail


def test_provider_slow_or_dear_fails_on_its_own_figures() -> None:
    analysis = Analysis.model_validate({"minRequests": 10, "metrics": [
        {"name": "latency-p95-ms", "max": 150}, {"name": "cost-per-request-usd", "max": 0.0015},
    ]})  # fmt: skip
    arms, providers = split_window(190, 10, anthropic_falls_back=False)
    result = judge(analysis, merge([arms]), providers=merge_providers([providers]))
    assert result.verdict == "Failed", "the arm holds (p95 50 ms, $0.00105): only its part fails"
    assert result.detail == (
        "latency-p95-ms 200 > max 150 (real arm, provider anthropic-backup; mock arm 400); "
        "cost-per-request-usd 0.002 > max 0.0015 (real arm, provider anthropic-backup; "
        "mock arm 0)"
    )


def test_provider_quality_counts_for_the_provider_that_wrote_the_answer() -> None:
    """min/minVsMock against the same mock arm; the score of a fallback answer belongs to
    the provider that wrote it, its failure to the provider it was routed to."""
    analysis = Analysis.model_validate({"minRequests": 10, "metrics": [
        {"name": "quality-score", "min": 3.0, "minVsMock": -0.2},
    ]})  # fmt: skip
    stats = WindowStats()
    for _ in range(12):
        stats.record("real", 200, 0.05, provider="openai-primary")
        stats.record_quality("real", 2.0, False, None, backend="openai-primary")
        stats.record("real", 200, 0.05, provider="anthropic-backup")
        stats.record_quality("real", 4.8, False, None, backend="anthropic-backup")
        stats.record("mock", 200, 0.05)
        stats.record_quality("mock", 4.5, False, None, backend="mock")
    providers = stats.drain_providers()
    assert "mock" not in providers
    result = judge(analysis, merge([stats.drain()]), providers=providers)
    assert result.verdict == "Failed"
    assert result.detail == (
        "quality-score 3.4 < mock 4.5 -0.2 = 4.3 (minVsMock) (real arm; mock arm 4.5); "
        "quality-score 2 < min 3 and < mock 4.5 -0.2 = 4.3 (minVsMock) "
        "(real arm, provider openai-primary; mock arm 4.5)"
    )


def test_old_sidecars_without_providers_are_judged_as_before() -> None:
    report = WindowReport.model_validate_json(
        '{"sidecar": "old", "configVersion": 1, "arms": {"real": {"requests": 0}}}'
    )
    assert report.providers == {}
    windows = Windows()
    windows.add(report)
    result = judge(ANALYSIS, merge([windows.arms]), providers=merge_providers([windows.providers]))
    assert result.providers == ()
    assert "providers" not in result.detail


def test_a_report_whose_providers_outnumber_the_real_arm_is_refused() -> None:
    real = ArmWindow(requests=2, latency_buckets=[2] + [0] * 17)
    three = ArmWindow(requests=3, latency_buckets=[3] + [0] * 17)
    with pytest.raises(ValidationError, match="providers' requests exceed the real arm's"):
        WindowReport(sidecar="a", config_version=1, arms={"real": real},
                     providers={"openai-primary": three})  # fmt: skip


def test_cached_answers_count_for_the_arm_only() -> None:
    stats = WindowStats()
    stats.record("real", 200, 0.001)  # a cache hit: no provider was called
    stats.record("real", 200, 0.05, provider="openai-primary")
    assert stats.drain()["real"].requests == 2
    assert stats.drain_providers()["openai-primary"].requests == 1
    assert stats.drain_providers() == {}


def test_judge_scores_count_for_the_real_provider_only() -> None:
    stats = WindowStats()
    stats.judged("real", 4.0, "anthropic-backup")
    stats.judged("real", 2.0, "mock")  # a real request the mock answered: the arm's
    stats.judged("mock", 5.0, "mock")
    assert stats.drain_providers() == {
        "anthropic-backup": ArmWindow(quality=QualityWindow(judged=1, judge_sum=4.0))
    }


def test_get_shows_each_provider_judged_or_not() -> None:
    arms, providers = split_window(40, 15, anthropic_falls_back=True)
    providers["gemini-spare"] = ArmWindow()  # in the split, no request routed to it yet
    status = judge(ANALYSIS, merge([arms]), providers=providers).to_status()
    shown = render({"metadata": {"namespace": "shop", "name": "marketing"},
                    "status": {"analysis": status}})  # fmt: skip
    assert (
        "Providers: (real arm by routed provider, last window)\n"
        "  anthropic-backup           15 requests  error-rate 1 FAIL, latency-p95-ms 200 ok\n"
        "  gemini-spare                0 requests  (fewer than minRequests: not judged)\n"
        "  openai-primary             40 requests  error-rate 0 ok, latency-p95-ms 50 ok\n"
    ) in shown
