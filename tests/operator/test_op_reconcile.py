"""One operator tick, without kopf: commands, bad specs, spec changes, status contents."""

from __future__ import annotations

from typing import Any

from proxy.config import ArmWindow, QualityWindow, WindowReport
from rollout_operator.hub import Hub
from rollout_operator.plugin import render
from rollout_operator.reconcile import COMMAND_ANNOTATION, HISTORY_LENGTH, tick

KEY = ("shop", "m")
SPEC: dict[str, Any] = {
    "providers": [{"name": "p", "type": "openai", "baseURL": "http://x/v1",
                   "rateLimit": {"requestsPerMinute": 3000}}],
    "strategy": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}],
                 "analysis": {"interval": "1s", "failureLimit": 1, "minRequests": 1,
                              "metrics": [{"name": "error-rate", "max": 0.1}]}},
}  # fmt: skip


def run(hub: Hub, spec: dict[str, Any], now: float, generation: int = 1, command: str = "",
        status: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    meta = {"generation": generation, "annotations": {COMMAND_ANNOTATION: command}}
    new, transitions = tick(hub, KEY, spec, meta, status or {}, now)
    return new, [t.reason for t in transitions]


def test_first_tick_starts_and_publishes_the_effective_config() -> None:
    hub = Hub()
    status, reasons = run(hub, SPEC, now=0)
    assert (status["phase"], status["realWeight"], status["currentStepIndex"]) == ("Paused", 20, 1)
    assert reasons == ["WeightSet", "Paused"]
    effective = hub.rollouts[KEY].effective
    assert effective is not None
    assert effective.spec.traffic.real_weight == 20
    assert status["sidecars"] == {"connected": 0, "configVersion": effective.version, "names": []}


def test_commands_run_once_and_unknown_ones_are_refused() -> None:
    hub = Hub()
    run(hub, SPEC, now=0)
    status, reasons = run(hub, SPEC, now=1, command="c1 promote")
    assert status["realWeight"] == 100
    assert status["lastCommand"] == {"id": "c1", "verb": "promote", "result": "done"}
    status, reasons = run(hub, SPEC, now=2, command="c1 promote", status=status)
    assert reasons == []  # same id: not again
    status, reasons = run(hub, SPEC, now=3, command="c2 explode", status=status)
    assert reasons == ["CommandRejected"]
    assert status["lastCommand"]["result"].startswith("rejected: unknown command 'explode'")


def test_failed_analysis_rolls_back_and_names_the_metric() -> None:
    hub = Hub()
    run(hub, SPEC, now=0)
    live = hub.rollouts[KEY]
    window = {"real": ArmWindow(requests=10, errors=5, latency_buckets=[10] + [0] * 17)}
    hub.report(live, WindowReport(sidecar="a", config_version=1, arms=window), now=0.5)
    status, reasons = run(hub, SPEC, now=1.5)
    assert "RolledBack" in reasons
    assert (status["phase"], status["realWeight"]) == ("Degraded", 0)
    assert status["analysis"]["metrics"][0] == {
        "name": "error-rate", "real": 0.5, "mock": None, "max": 0.1, "min": None,
        "minVsMock": None, "ok": False,
    }  # fmt: skip
    assert hub.rollouts[KEY].effective.spec.traffic.real_weight == 0  # type: ignore[union-attr]


def test_a_bad_spec_change_keeps_the_last_good_one() -> None:
    hub = Hub()
    run(hub, SPEC, now=0)
    bad = {**SPEC, "fallback": ["nope"]}
    status, reasons = run(hub, bad, now=1, generation=2)
    assert reasons == ["InvalidSpec"]
    assert status["realWeight"] == 20
    status, reasons = run(hub, {**SPEC, "forceMock": True}, now=2, generation=3)
    assert reasons[0] == "SpecChanged"
    assert status["observedGeneration"] == 3
    assert hub.rollouts[KEY].effective.spec.force_mock is True  # type: ignore[union-attr]


def test_a_never_valid_spec_is_not_started() -> None:
    status, reasons = run(Hub(), {"providers": [{"name": "mock", "type": "x"}]}, now=0)
    assert reasons == ["InvalidSpec"]
    assert "not started" in status["message"]


def test_rate_limits_are_shared_among_connected_sidecars() -> None:
    hub = Hub()
    run(hub, SPEC, now=0)
    live = hub.rollouts[KEY]
    for sidecar in ("a", "b", "c"):
        live.seen[sidecar] = 10**10  # seen "now" for any clock
    hub.publish(live)
    limit = live.effective.spec.providers[0].rate_limit  # type: ignore[union-attr]
    assert limit is not None
    assert limit.requests_per_minute == 1000


def test_sidecars_joining_between_ticks_make_one_new_version_encoded_once() -> None:
    """500 sidecars joining within a tick change everyone's rate-limit share once, at the
    tick: one new version (one wake-up of every long-poll), not one per join; and every
    long-poll answers with the same bytes, encoded once for that version."""
    hub = Hub()
    run(hub, SPEC, now=0)
    live = hub.rollouts[KEY]
    before = live.version
    for index in range(500):
        live.seen[f"app-{index}"] = 10**10
    run(hub, SPEC, now=0.25)
    assert live.version == before + 1
    assert live.effective is not None
    assert live.effective_json == live.effective.model_dump_json(by_alias=True).encode()
    limit = live.effective.spec.providers[0].rate_limit
    assert limit is not None
    assert limit.requests_per_minute == 6  # 3000 / 500
    run(hub, SPEC, now=0.5)
    assert live.version == before + 1  # nothing changed: no new version, nobody woken


SHADOW_SPEC: dict[str, Any] = {
    "providers": SPEC["providers"],
    "traffic": {"shadow": {"percent": 0, "maxConcurrent": 3}},
    "strategy": {"steps": [{"setShadow": 50}, {"pause": {"duration": "10s"}}, {"setWeight": 20},
                           {"pause": {}}],
                 "analysis": {"interval": "1s", "failureLimit": 1, "minRequests": 5,
                              "metrics": [{"name": "quality-score", "min": 4.0,
                                           "minVsMock": -0.2}]}},
}  # fmt: skip


def test_set_shadow_reaches_the_sidecars_and_a_rollback_turns_it_off() -> None:
    hub = Hub()
    status, reasons = run(hub, SHADOW_SPEC, now=0)
    assert reasons == ["ShadowSet"]
    assert (status["realWeight"], status["shadowPercent"]) == (0, 50)
    live = hub.rollouts[KEY]
    assert live.effective is not None
    shadow = live.effective.spec.traffic.shadow
    assert shadow is not None
    assert (shadow.percent, shadow.max_concurrent) == (50, 3), "maxConcurrent kept from the spec"

    # Shadow copies answering badly: the real arm scores 2.0 against the mock's 4.7.
    real = ArmWindow(requests=8, shadow_requests=8, latency_buckets=[8] + [0] * 17,
                     quality=QualityWindow(scored=8, score_sum=16.0))  # fmt: skip
    mock = ArmWindow(requests=16, latency_buckets=[16] + [0] * 17,
                     quality=QualityWindow(scored=16, score_sum=16 * 4.7))  # fmt: skip
    hub.report(live, WindowReport(sidecar="a", config_version=1,
                                  arms={"real": real, "mock": mock}), now=0.5)  # fmt: skip
    status, reasons = run(hub, SHADOW_SPEC, now=1.5, status=status)
    assert reasons == ["RolledBack"]
    assert (status["phase"], status["realWeight"], status["shadowPercent"]) == ("Degraded", 0, 0)
    assert "quality-score 2 < min 4 and < mock 4.7 -0.2 = 4.5 (minVsMock)" in status["message"]
    assert status["analysis"]["quality"]["real"]["shadowRequests"] == 8
    assert live.effective.spec.traffic.shadow == shadow.model_copy(update={"percent": 0})

    shown = render({"metadata": {"namespace": "shop", "name": "m"}, "spec": SHADOW_SPEC,
                    "status": status}).splitlines()  # fmt: skip
    assert "Shadow:    0% of mock-routed requests copied to the real arm" in shown
    assert "     0: setShadow 50" in shown
    assert (
        "  quality-score            real 2          mock 4.7        min 4 minVsMock -0.2  FAIL"
        in shown
    )
    assert "Quality:   (last window)  score  brand  rejected  judge  scored  shadow copies" in shown
    assert "  real                        2    n/a         0    n/a       8              8" in shown
    assert "  mock                      4.7    n/a         0    n/a      16              0" in shown


def test_without_strategy_the_spec_shadow_applies_as_is() -> None:
    hub = Hub()
    spec = {"providers": SPEC["providers"], "traffic": {"realWeight": 10,
                                                         "shadow": {"percent": 30}}}  # fmt: skip
    status, reasons = run(hub, spec, now=0)
    assert reasons == ["StaticSplit"]
    assert (status["realWeight"], status["shadowPercent"]) == (10, 30)
    effective = hub.rollouts[KEY].effective
    assert effective is not None
    assert effective.spec.traffic.shadow is not None
    assert effective.spec.traffic.shadow.percent == 30
    status, reasons = run(hub, spec, now=1, command="c1 abort", status=status)
    assert reasons == ["Aborted"]
    assert (status["phase"], status["realWeight"], status["shadowPercent"]) == ("Aborted", 0, 0)
    assert effective is not hub.rollouts[KEY].effective
    assert hub.rollouts[KEY].effective.spec.traffic.shadow.percent == 0  # type: ignore[union-attr]


def test_windows_that_began_before_a_restart_point_are_not_judged() -> None:
    """A window a sidecar began under an older config version than the last weight
    change (or retry, promote, spec change) holds answers from before it: dropped."""
    hub = Hub()
    spec = {"providers": [{"name": "p", "type": "openai", "baseURL": "http://x/v1"}],
            "strategy": {"steps": [{"setWeight": 5}, {"pause": {}}]}}  # fmt: skip
    key = ("shop", "r")
    status, _ = tick(hub, key, spec, {"generation": 1}, {}, now=0.0)
    live = hub.rollouts[key]
    first = live.version
    promote = {"generation": 1, "annotations": {COMMAND_ANNOTATION: "1 promote"}}
    tick(hub, key, spec, promote, status, now=1.0)
    assert live.judge_from == live.version > first
    failing = ArmWindow(requests=5, errors=5, latency_buckets=[5] + [0] * 17)
    old = WindowReport(sidecar="a", config_version=live.judge_from - 1, arms={"real": failing})
    fresh = old.model_copy(update={"config_version": live.judge_from})
    hub.report(live, old, now=1.0)
    hub.report(live, fresh, now=1.0)
    assert len(live.windows) == 1
    assert "a" in live.seen, "a stale window still shows the sidecar is there"


def test_history_keeps_each_analysis_run_bounded_and_across_restarts() -> None:
    """The dashboard's charts: per run, the judged step and weight, both arms, thresholds."""
    hub = Hub()
    status, _ = run(hub, SPEC, now=0)
    live = hub.rollouts[KEY]
    hub.report(live, WindowReport(sidecar="a", config_version=1,
                                  arms={"real": ArmWindow(requests=10, errors=5,
                                                          latency_buckets=[10] + [0] * 17),
                                        "mock": ArmWindow(requests=30,
                                                          latency_buckets=[30] + [0] * 17)}),
               now=0.5)  # fmt: skip
    status, _ = run(hub, SPEC, now=1.5, status=status)
    [entry] = status["history"]
    assert (entry["at"], entry["step"], entry["weight"]) == (1.5, 1, 20)
    assert entry["verdict"] == "Failed"
    assert entry["requests"] == {"real": 10, "mock": 30}
    assert entry["metrics"][0] == {"name": "error-rate", "real": 0.5, "mock": 0.0, "max": 0.1,
                                   "min": None, "minVsMock": None, "ok": False}  # fmt: skip
    assert entry["shadow"] == 0
    assert "RolledBack" in entry["outcome"]
    assert status["operatorHeartbeat"] == 0  # moves on every HEARTBEAT_SECONDS only
    # A new operator (empty hub) carries the history on; it never grows past its bound.
    status["history"] = [entry] * (HISTORY_LENGTH + 5)
    status, _ = run(Hub(), SPEC, now=100, status=status)
    assert len(status["history"]) == HISTORY_LENGTH
    assert status["operatorHeartbeat"] == 100


def test_cache_flush_bumps_the_epoch_sidecars_follow_in_any_phase_and_keeps_it() -> None:
    """`cache-flush` moves no traffic: the analysis under way keeps its windows; the epoch
    survives an operator restart, since sidecars key their entries by it (a lost epoch
    would bring flushed answers back)."""
    hub = Hub()
    status, _ = run(hub, SPEC, now=0)
    live = hub.rollouts[KEY]
    assert status["cacheEpoch"] == 0
    assert live.effective is not None
    assert live.effective.cache_epoch == 0
    window = {"real": ArmWindow(requests=2, latency_buckets=[2] + [0] * 17)}
    hub.report(live, WindowReport(sidecar="a", config_version=live.version, arms=window), 0.2)
    version, judge_from = live.version, live.judge_from
    status, reasons = run(hub, SPEC, now=0.5, command="c1 cache-flush", status=status)
    assert reasons == ["CacheFlushed"]
    assert status["lastCommand"] == {"id": "c1", "verb": "cache-flush", "result": "done"}
    assert status["cacheEpoch"] == 1
    assert (status["phase"], status["realWeight"]) == ("Paused", 20), "no traffic moved"
    assert live.effective is not None
    assert live.effective.cache_epoch == 1
    assert live.version == version + 1, "a new config version wakes the sidecars' long-polls"
    assert live.judge_from == judge_from, "analysis not restarted"
    assert "a" in live.windows, "the window under way is kept"
    # Aborted: a wrong cached answer is still wrong, the flush is not refused.
    status, _ = run(hub, SPEC, now=1, command="c2 abort", status=status)
    status, reasons = run(hub, SPEC, now=2, command="c3 cache-flush", status=status)
    assert (reasons, status["cacheEpoch"], status["phase"]) == (["CacheFlushed"], 2, "Aborted")
    # A new operator (empty hub) publishes the epoch it finds in status, not 0.
    fresh = Hub()
    status, _ = run(fresh, SPEC, now=3, command="c3 cache-flush", status=status)
    assert status["cacheEpoch"] == 2, "the same command id is not run again"
    effective = fresh.rollouts[KEY].effective
    assert effective is not None
    assert effective.cache_epoch == 2
