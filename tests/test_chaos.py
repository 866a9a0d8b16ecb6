"""Chaos: provider outages, slowdowns, cuts and quota walls through the sidecar.

Every scenario (see `tests/chaos.py`) asserts the same three promises:
no request lost (each got an answer in its own dialect), the breaker opened
within the configured failures and closed after recovery, and a failing
provider got no more calls than the policy allows.
"""

from __future__ import annotations

from tests.chaos import BREAKER, RETRY, SCENARIOS, Report

MIN = BREAKER["minRequests"]
ATTEMPTS = RETRY["maxAttempts"]


def no_request_lost(report: Report) -> None:
    print(report)  # the figures, for the CI log
    assert report.lost == []
    assert report.answered == report.sent > 0


async def test_burst_of_5xx_falls_back_and_the_breaker_opens_then_closes() -> None:
    result = await SCENARIOS["burst_5xx"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent, "the backup answered what the primary could not"
    assert facts["outage_attempts"] == MIN, "open after minRequests failures, then no calls"
    assert facts["open_during_outage"] == "open"
    assert facts["after_recovery"] == "closed"
    assert report.transitions["primary"] == {"open": 1, "half-open": 1, "closed": 1}
    assert report.by_backend["backup"] == 20
    assert report.by_backend["primary"] == 10
    assert report.reasons["fallback:primary"] == MIN // ATTEMPTS
    assert report.reasons["breaker-open:primary"] == 20 - MIN // ATTEMPTS


async def test_529_storm_with_only_mock_behind_keeps_answering() -> None:
    result = await SCENARIOS["overloaded_529"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent
    assert facts["outage_attempts"] == MIN
    assert report.by_backend["mock"] == 20, "the mock answered in Anthropic's dialect"
    assert facts["after_recovery"] == "closed"
    assert report.by_backend["claude"] == 6


async def test_slow_first_byte_times_out_and_falls_back() -> None:
    result = await SCENARIOS["slow_first_byte"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent
    assert report.by_backend["backup"] == 8
    assert facts["outage_attempts"] == MIN
    assert facts["open_during_outage"] == "open"


async def test_stream_stalled_midway_ends_with_the_dialects_error_event() -> None:
    result = await SCENARIOS["stall_mid_stream"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    failed = report.errors["stream-error-event"]
    assert failed == MIN, "streams already begun cannot be retried: each ends with an error event"
    assert facts["stream_errors_counted"] == MIN
    assert facts["outage_attempts"] == MIN, "one call per stream: nothing relayed is retried"
    assert facts["open_during_outage"] == "open"
    assert report.by_backend["backup"] == report.sent - MIN
    assert report.by_backend["primary"] == MIN, "the error event came from the primary's stream"
    assert report.attempts == {"primary": MIN, "backup": report.sent - MIN}


async def test_stream_cut_midway_ends_with_the_dialects_error_event() -> None:
    result = await SCENARIOS["cut_mid_stream"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.errors["stream-error-event"] == MIN
    assert facts["stream_errors_counted"] == MIN
    assert facts["outage_attempts"] == MIN
    assert report.by_backend["backup"] == report.sent - MIN


async def test_429_storm_honours_retry_after_and_pauses_the_provider() -> None:
    result = await SCENARIOS["rate_limit_429"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent
    assert facts["short_wait_attempts"] == 2, "retry-after-ms 30: waited, same provider again"
    assert facts["storm_attempts"] == 1, "retry-after 1 s: paused after the first 429"
    assert report.by_backend["backup"] == 10
    assert facts["after_pause_primary"] == 2 + 1 + 3, "the primary is used again after the pause"
    assert report.transitions["primary"]["open"] == 0, "quota is not ill health"


async def test_connection_refused_falls_back_and_recovers() -> None:
    result = await SCENARIOS["connection_refused"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent
    assert facts["unreachable_attempts"] == MIN
    assert facts["open_during_outage"] == "open"
    assert facts["after_recovery"] == "closed"
    assert facts["served_by_primary_after"] == 5
    assert report.attempts["primary"] == MIN + 5, "calls while down (refused) + after"


async def test_concurrent_503s_lose_nothing_and_bound_the_primary_calls() -> None:
    result = await SCENARIOS["concurrent_5xx"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent == 60
    # Calls already in flight when the breaker opens still finish (and may retry once).
    assert facts["outage_attempts"] <= MIN + facts["in_flight"] * ATTEMPTS
    assert report.by_backend["primary"] == 0


async def test_gemini_503_storm_is_answered_by_the_mock_in_geminis_shape() -> None:
    result = await SCENARIOS["gemini_503"]()
    report, facts = result.report, result.facts
    no_request_lost(report)
    assert report.succeeded == report.sent
    assert facts["outage_attempts"] == MIN
    assert facts["open_during_outage"] == "open"
    assert report.by_backend["mock"] == 12
    assert facts["after_recovery"] == "closed"
    assert report.by_backend["gemini"] == 4
