"""The step machine: what a person watching the rollout sees happen, without any cluster."""

from __future__ import annotations

import pytest

from proxy.config import parse_spec
from rollout_operator import steps
from rollout_operator.steps import CommandRejected, RolloutState


def spec(strategy: object = None, **extra: object):  # type: ignore[no-untyped-def]
    doc: dict[str, object] = {"providers": [{"name": "p", "type": "openai",
                                             "baseURL": "http://x/v1"}], **extra}  # fmt: skip
    if strategy is not None:
        doc["strategy"] = strategy
    return parse_spec(doc)


CANARY = {
    "steps": [
        {"setWeight": 5},
        {"pause": {"duration": "30s"}},
        {"setWeight": 25},
        {"pause": {}},
        {"setWeight": 50},
        {"setWeight": 100},
    ]
}


def test_walks_to_timed_pause_then_on_after_duration() -> None:
    s = spec(CANARY)
    state, transitions = steps.start(s, now=0)
    assert (state.phase, state.step_index, state.real_weight) == ("Progressing", 1, 5)
    assert [t.reason for t in transitions] == ["WeightSet"]
    state, _ = steps.advance(s, state, now=29)
    assert state.step_index == 1
    state, _ = steps.advance(s, state, now=31)
    assert (state.phase, state.step_index, state.real_weight) == ("Paused", 3, 25)


def test_indefinite_pause_waits_for_promote_then_completes_at_100() -> None:
    s = spec(CANARY)
    state, _ = steps.start(s, now=0)
    state, _ = steps.advance(s, state, now=31)
    state, _ = steps.advance(s, state, now=10_000)
    assert (state.phase, state.real_weight) == ("Paused", 25)
    state, transitions = steps.command(s, state, "promote", now=10_001)
    assert (state.phase, state.real_weight, state.step_index) == ("Healthy", 100, 6)
    assert "Promoted" in [t.reason for t in transitions]


def test_timed_pause_waits_for_passing_analysis_when_analysis_is_configured() -> None:
    s = spec({**CANARY, "analysis": {"interval": "1s", "metrics": [{"name": "error-rate",
                                                                  "max": 0.1}]}})  # fmt: skip
    state, _ = steps.start(s, now=0)
    state, _ = steps.judged(s, state, "Inconclusive", "too few", now=10)
    state, _ = steps.advance(s, state, now=40)
    assert state.step_index == 1
    assert "waiting for a conclusive analysis" in state.message
    state, _ = steps.judged(s, state, "Passed", "ok", now=41)
    state, _ = steps.advance(s, state, now=41)
    assert state.real_weight == 25


def test_consecutive_failures_roll_back_to_zero_with_the_reason() -> None:
    s = spec({**CANARY, "analysis": {"failureLimit": 2, "metrics": [{"name": "error-rate",
                                                                   "max": 0.1}]}})  # fmt: skip
    state, _ = steps.start(s, now=0)
    state, t1 = steps.judged(s, state, "Failed", "error-rate 0.5 > max 0.1", now=1)
    assert state.phase == "Progressing"
    assert t1[0].reason == "AnalysisFailed"
    state, t2 = steps.judged(s, state, "Failed", "error-rate 0.5 > max 0.1", now=2)
    assert (state.phase, state.real_weight) == ("Degraded", 0)
    assert t2[0].reason == "RolledBack"
    assert "error-rate 0.5 > max 0.1" in t2[0].message
    state, _ = steps.advance(s, state, now=100)
    assert state.real_weight == 0  # stays rolled back


def test_a_pass_between_failures_resets_the_count() -> None:
    s = spec({**CANARY, "analysis": {"failureLimit": 2}})
    state, _ = steps.start(s, now=0)
    state, _ = steps.judged(s, state, "Failed", "x", now=1)
    state, _ = steps.judged(s, state, "Passed", "ok", now=2)
    state, _ = steps.judged(s, state, "Failed", "x", now=3)
    assert state.phase == "Progressing"


def test_no_data_between_two_failures_does_not_erase_the_first() -> None:
    """An inconclusive window (too few requests) is no evidence of health."""
    s = spec({**CANARY, "analysis": {"failureLimit": 2}})
    state, _ = steps.start(s, now=0)
    state, _ = steps.judged(s, state, "Failed", "error-rate 1 > max 0.01", now=1)
    state, _ = steps.judged(s, state, "Inconclusive", "0 real requests", now=2)
    state, rolled = steps.judged(s, state, "Failed", "error-rate 1 > max 0.01", now=3)
    assert (state.phase, state.real_weight) == ("Degraded", 0)
    assert rolled[0].reason == "RolledBack"


def test_a_rollout_judging_blind_says_so_once() -> None:
    s = spec({**CANARY, "analysis": {"failureLimit": 2}})
    state, _ = steps.start(s, now=0)
    said = []
    for now in range(1, 7):
        state, transitions = steps.judged(s, state, "Inconclusive", "2 real requests", now=now)
        said += transitions
    assert [t.reason for t in said] == ["AnalysisBlind"]
    assert said[0].warning
    assert "inconclusive 3 times in a row: 2 real requests" in said[0].message
    assert state.inconclusive_streak == 6
    state, _ = steps.judged(s, state, "Passed", "ok", now=7)
    assert state.inconclusive_streak == 0
    assert RolloutState.from_status(state.to_status()) == state


def test_abort_retry_pause_resume_set_weight() -> None:
    s = spec(CANARY)
    state, _ = steps.start(s, now=0)
    state, _ = steps.command(s, state, "pause", now=1)
    assert (state.phase, state.paused_by_user) == ("Paused", True)
    state, _ = steps.advance(s, state, now=100)
    assert state.step_index == 1  # a hand pause holds even a timed pause
    state, _ = steps.command(s, state, "resume", now=101)
    assert state.phase == "Progressing"
    state, _ = steps.command(s, state, "set-weight", now=102, weight=40)
    assert (state.real_weight, state.phase) == (40, "Paused")
    state, _ = steps.command(s, state, "abort", now=103)
    assert (state.phase, state.real_weight) == ("Aborted", 0)
    with pytest.raises(CommandRejected, match="retry"):
        steps.command(s, state, "promote", now=104)
    state, _ = steps.command(s, state, "retry", now=105)
    assert (state.phase, state.step_index, state.real_weight) == ("Progressing", 1, 5)


def test_promote_full_and_rejections() -> None:
    s = spec(CANARY)
    state, _ = steps.start(s, now=0)
    with pytest.raises(CommandRejected, match="not paused"):
        steps.command(s, state, "resume", now=1)
    with pytest.raises(CommandRejected, match="0 to 100"):
        steps.command(s, state, "set-weight", now=1, weight=101)
    state, _ = steps.command(s, state, "promote-full", now=1)
    assert (state.phase, state.real_weight) == ("Healthy", 100)


def test_no_strategy_is_a_static_split() -> None:
    s = spec(traffic={"realWeight": 30})
    state, transitions = steps.start(s, now=0)
    assert (state.phase, state.real_weight) == ("Healthy", 30)
    assert transitions[0].reason == "StaticSplit"
    with pytest.raises(CommandRejected, match="static split"):
        steps.command(s, state, "promote", now=1)


def test_spec_change_restarts_analysis_at_the_current_step() -> None:
    s = spec({**CANARY, "analysis": {"failureLimit": 3}})
    state, _ = steps.start(s, now=0)
    state, _ = steps.judged(s, state, "Failed", "x", now=1)
    state, transitions = steps.spec_changed(s, state, now=2)
    assert (state.step_index, state.consecutive_failures, state.step_started_at) == (1, 0, 2)
    assert transitions[0].reason == "SpecChanged"


def test_state_round_trips_through_status() -> None:
    state = RolloutState("Paused", 3, 25, 12.5, True, 1, "Failed", "m", shadow_percent=10)
    assert RolloutState.from_status(state.to_status()) == state
    assert RolloutState.from_status({}) is None


def test_shadow_steps_apply_at_once_and_every_way_back_turns_shadow_off() -> None:
    s = spec({"steps": [{"setShadow": 20}, {"pause": {}}, {"setShadow": 100}, {"setWeight": 10},
                        {"pause": {}}]})  # fmt: skip
    state, transitions = steps.start(s, now=0)
    assert (state.step_index, state.real_weight, state.shadow_percent) == (1, 0, 20)
    assert [t.message for t in transitions] == [
        "step 0: shadow 0% -> 20% of mock-routed requests copied to the real arm",
        "step 1: paused until promoted",
    ]
    state, _ = steps.command(s, state, "promote", now=1)
    assert (state.step_index, state.real_weight, state.shadow_percent) == (4, 10, 100)
    aborted, _ = steps.command(s, state, "abort", now=2)
    assert (aborted.real_weight, aborted.shadow_percent) == (0, 0)
    retried, _ = steps.command(s, aborted, "retry", now=3)
    assert retried.shadow_percent == 20, "retry starts again at step 0, shadow and all"
    failed, _ = steps.judged(s, state, "Failed", "quality-score 2 < min 4", now=4)
    assert (failed.phase, failed.real_weight, failed.shadow_percent) == ("Degraded", 0, 0)
    done, _ = steps.command(s, state, "promote", now=5)
    assert (done.phase, done.real_weight, done.shadow_percent) == ("Healthy", 100, 0)
