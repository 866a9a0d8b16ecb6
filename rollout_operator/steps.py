"""The rollout step machine, as pure functions over an immutable `RolloutState`.

The operator persists the state in the resource's `status`, so a restart picks up
at the same step. Each function returns the new state and the transitions it made
(each transition becomes a Kubernetes Event); nothing here touches the clock or
the network: `now` is passed in.

Model (Argo Rollouts' canary, for LLM traffic): `setWeight` steps apply at once;
a timed `pause` ends when its duration has passed *and* analysis (if any) has
passed at that weight -- inconclusive analysis keeps waiting; `pause: {}` waits
for `promote`. Past the last step the rollout is fully promoted: 100 % real.

`setShadow: N` steps apply at once too: N % of the mock-routed requests are also
copied to the real arm in the background (the client still gets the mock), so a
rollout can begin with `setShadow` + `pause` steps judged by the same analysis
before any user sees a real answer. Like the weight, the strategy owns the shadow
share (it starts at 0; without a strategy `traffic.shadow.percent` applies as is).

Every way back to the mock -- a rollback after failed analyses, `abort`, and the
delete of the rollout -- also sets shadow to 0 %. Shadow copies cost real money
on the provider just judged bad (or that a person just stopped), and once the
rollout is Degraded or Aborted no analysis runs, so the copies would buy nothing:
the safe choice is to stop spending. `retry` starts again from step 0, and the
`setShadow` steps turn shadowing back on. Full promotion sets it to 0 % as well:
at 100 % real nothing is mock-routed, so nothing would be copied anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from proxy.config import LLMRolloutSpec, parse_duration

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded", "Aborted"]
Verdict = Literal["Passed", "Failed", "Inconclusive"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One change worth an Event: `reason` is CamelCase, `message` says what and why."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class RolloutState:
    phase: Phase = "Progressing"
    step_index: int = 0
    real_weight: int = 0
    step_started_at: float = 0.0
    paused_by_user: bool = False
    consecutive_failures: int = 0
    last_verdict: Verdict | None = None
    message: str = ""
    shadow_percent: int = 0  # of mock-routed requests, copied to the real arm
    #: Analyses in a row that could not conclude (too few requests, no sidecar data).
    inconclusive_streak: int = 0

    def to_status(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "currentStepIndex": self.step_index,
            "realWeight": self.real_weight,
            "shadowPercent": self.shadow_percent,
            "stepStartedAt": self.step_started_at,
            "pausedByUser": self.paused_by_user,
            "consecutiveFailures": self.consecutive_failures,
            "lastVerdict": self.last_verdict,
            "message": self.message,
            "inconclusiveStreak": self.inconclusive_streak,
        }

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState | None:
        """The state a previous operator run persisted, or None if it never ran."""
        if "phase" not in status:
            return None
        return cls(
            phase=status["phase"],
            step_index=int(status.get("currentStepIndex", 0)),
            real_weight=int(status.get("realWeight", 0)),
            shadow_percent=int(status.get("shadowPercent", 0)),
            step_started_at=float(status.get("stepStartedAt", 0.0)),
            paused_by_user=bool(status.get("pausedByUser", False)),
            consecutive_failures=int(status.get("consecutiveFailures", 0)),
            last_verdict=status.get("lastVerdict"),
            message=str(status.get("message", "")),
            inconclusive_streak=int(status.get("inconclusiveStreak", 0)),
        )


Result = tuple[RolloutState, list[Transition]]


class CommandRejected(ValueError):
    """A command that does not apply in the rollout's current state; the message says why."""


def start(spec: LLMRolloutSpec, now: float) -> Result:
    """A new rollout: at step 0 (or, without a strategy, the static split)."""
    weight, shadow = _static_split(spec) if spec.strategy is None else (0, 0)
    state = RolloutState(step_started_at=now, real_weight=weight, shadow_percent=shadow)
    return advance(spec, state, now)


def _static_split(spec: LLMRolloutSpec) -> tuple[int, int]:
    """Real weight and shadow percent of a rollout without strategy: the spec's, as is."""
    shadow = spec.traffic.shadow
    return spec.traffic.real_weight, 0 if shadow is None else shadow.percent


def advance(spec: LLMRolloutSpec, state: RolloutState, now: float) -> Result:
    """Walk as far as the steps allow at `now`."""
    if state.phase in ("Degraded", "Aborted") or state.paused_by_user:
        return state, []
    if spec.strategy is None:
        weight, shadow = _static_split(spec)
        if state.phase == "Healthy" and (state.real_weight, state.shadow_percent) == (
            weight,
            shadow,
        ):
            return state, []
        new = replace(state, phase="Healthy", real_weight=weight, shadow_percent=shadow,
                      message="static split")  # fmt: skip
        copied = f", {shadow}% of mock-routed requests shadowed" if shadow else ""
        return new, [
            Transition("StaticSplit", f"static split: {weight}% real{copied} (no strategy)")
        ]
    steps = spec.strategy.steps
    transitions: list[Transition] = []
    while state.step_index < len(steps):
        step = steps[state.step_index]
        if step.set_weight is not None:
            transitions.append(
                Transition(
                    "WeightSet",
                    f"step {state.step_index}: real weight {state.real_weight}% -> "
                    f"{step.set_weight}%",
                )
            )
            state = _next_step(state, now, weight=step.set_weight)
            continue
        if step.set_shadow is not None:
            transitions.append(
                Transition(
                    "ShadowSet",
                    f"step {state.step_index}: shadow {state.shadow_percent}% -> "
                    f"{step.set_shadow}% of mock-routed requests copied to the real arm",
                )
            )
            state = _next_step(state, now, shadow=step.set_shadow)
            continue
        assert step.pause is not None
        if step.pause.duration is None:
            return _paused(state, f"step {state.step_index}: paused until promoted", transitions)
        remaining = state.step_started_at + parse_duration(step.pause.duration) - now
        if remaining > 0:
            return _progressing(
                state, f"step {state.step_index}: pause {step.pause.duration}", transitions
            )
        if spec.strategy.analysis is not None and state.last_verdict != "Passed":
            return _progressing(
                state,
                f"step {state.step_index}: pause over, waiting for a conclusive analysis",
                transitions,
            )
        transitions.append(
            Transition("PauseEnded", f"step {state.step_index}: pause {step.pause.duration} ended")
        )
        state = _next_step(state, now)
    if state.phase != "Healthy":
        transitions.append(Transition("Promoted", "all steps done: 100% real"))
        state = replace(state, phase="Healthy", real_weight=100, shadow_percent=0,
                        message="fully promoted")  # fmt: skip
    return state, transitions


def _next_step(
    state: RolloutState, now: float, weight: int | None = None, shadow: int | None = None
) -> RolloutState:
    """The next step starts now; analysis restarts with it (a new split is a new question)."""
    return replace(
        state,
        step_index=state.step_index + 1,
        real_weight=state.real_weight if weight is None else weight,
        shadow_percent=state.shadow_percent if shadow is None else shadow,
        step_started_at=now,
        consecutive_failures=0,
        last_verdict=None,
        inconclusive_streak=0,
    )


def _paused(state: RolloutState, message: str, transitions: list[Transition]) -> Result:
    if state.phase != "Paused":
        transitions.append(Transition("Paused", message))
    return replace(state, phase="Paused", message=message), transitions


def _progressing(state: RolloutState, message: str, transitions: list[Transition]) -> Result:
    return replace(state, phase="Progressing", message=message), transitions


#: Inconclusive analyses in a row after which the rollout warns that it is judging blind.
BLIND_AFTER = 3


def judged(
    spec: LLMRolloutSpec, state: RolloutState, verdict: Verdict, detail: str, now: float
) -> Result:
    """Take one analysis verdict; `failureLimit` failures in a row roll back to 0 % real.

    Only a pass clears the failures counted so far: an inconclusive analysis (too few
    requests in its window) is no evidence of health, so "no data" between two failing
    windows never erases the first. `BLIND_AFTER` inconclusive analyses in a row are
    reported once (a warning Event; status `inconclusiveStreak`), since a rollout that
    cannot see its real arm can neither promote nor roll back.
    """
    if state.phase in ("Degraded", "Aborted", "Healthy"):
        return state, []
    if verdict == "Passed":
        return replace(state, last_verdict=verdict, consecutive_failures=0,
                       inconclusive_streak=0), []  # fmt: skip
    if verdict == "Inconclusive":
        streak = state.inconclusive_streak + 1
        new = replace(state, last_verdict=verdict, inconclusive_streak=streak)
        if streak != BLIND_AFTER:
            return new, []
        message = (f"analysis inconclusive {streak} times in a row: {detail}; the step can "
                   "neither pass nor fail until sidecars report enough real requests")  # fmt: skip
        return new, [Transition("AnalysisBlind", message, warning=True)]
    failures = state.consecutive_failures + 1
    limit = spec.strategy.analysis.failure_limit if spec.strategy and spec.strategy.analysis else 1
    state = replace(state, last_verdict="Failed", consecutive_failures=failures,
                    inconclusive_streak=0)  # fmt: skip
    if failures < limit:
        return state, [
            Transition("AnalysisFailed", f"analysis failed ({failures}/{limit}): {detail}", True)
        ]
    message = (
        f"rolled back to 0% real after {failures} failed analyses in a row, shadow off: {detail}"
    )
    return replace(state, phase="Degraded", real_weight=0, shadow_percent=0, message=message), [
        Transition("RolledBack", message, True)
    ]


def spec_changed(spec: LLMRolloutSpec, state: RolloutState, now: float) -> Result:
    """A new spec restarts analysis at the current step (clamped if steps were removed)."""
    steps = len(spec.strategy.steps) if spec.strategy else 0
    state = replace(
        state,
        step_index=min(state.step_index, steps),
        step_started_at=now,
        consecutive_failures=0,
        last_verdict=None,
    )
    new, transitions = advance(spec, state, now)
    changed = Transition("SpecChanged", "spec changed: analysis restarts at this step")
    return new, [changed, *transitions]


Command = Literal["promote", "promote-full", "abort", "retry", "pause", "resume", "set-weight"]


def command(
    spec: LLMRolloutSpec, state: RolloutState, verb: Command, now: float, weight: int | None = None
) -> Result:
    """A person's request (from `kubectl llmrollout`); refuses what makes no sense now."""
    if verb == "abort":
        if state.phase == "Aborted":
            raise CommandRejected("the rollout is already aborted")
        message = "aborted by hand: 0% real, shadow off; `retry` starts again from step 0"
        aborted = replace(state, phase="Aborted", real_weight=0, shadow_percent=0, message=message)
        return aborted, [Transition("Aborted", message, True)]
    if verb == "retry":
        if state.phase not in ("Aborted", "Degraded"):
            raise CommandRejected(
                f"retry restarts an aborted or degraded rollout; this one is {state.phase}"
            )
        fresh, transitions = start(spec, now)
        return fresh, [Transition("Retried", "retry: starting again from step 0"), *transitions]
    if state.phase in ("Aborted", "Degraded"):
        raise CommandRejected(f"the rollout is {state.phase}: use `retry` (or `abort`) first")
    if verb == "pause":
        if state.paused_by_user:
            raise CommandRejected("the rollout is already paused")
        message = f"paused by hand at {state.real_weight}% real; `resume` continues"
        return replace(state, phase="Paused", paused_by_user=True, message=message), [
            Transition("Paused", message)
        ]
    if verb == "resume":
        if not state.paused_by_user:
            raise CommandRejected("not paused by hand (at a pause step, use `promote`)")
        resumed = replace(state, paused_by_user=False, phase="Progressing", step_started_at=now)
        new, transitions = advance(spec, resumed, now)
        return new, [Transition("Resumed", "resumed"), *transitions]
    if verb == "set-weight":
        if weight is None or not 0 <= weight <= 100:
            raise CommandRejected("set-weight needs a weight from 0 to 100")
        message = f"weight set by hand to {weight}% real; paused, `resume` continues the steps"
        return replace(state, real_weight=weight, phase="Paused", paused_by_user=True,
                       message=message), [Transition("WeightSetByHand", message)]  # fmt: skip
    if spec.strategy is None:
        raise CommandRejected("a rollout without strategy is a static split; nothing to promote")
    if verb == "promote-full":
        message = "promoted in full by hand: 100% real"
        steps = len(spec.strategy.steps)
        full = replace(state, phase="Healthy", step_index=steps, real_weight=100,
                       shadow_percent=0, paused_by_user=False, message=message)  # fmt: skip
        return full, [Transition("Promoted", message)]
    # promote: skip the current pause (or leave a hand pause) and walk on.
    if state.step_index >= len(spec.strategy.steps):
        raise CommandRejected("the rollout is already fully promoted")
    step = spec.strategy.steps[state.step_index]
    if state.paused_by_user:
        state = replace(state, paused_by_user=False)
    elif step.pause is not None:
        state = _next_step(state, now)
    else:
        raise CommandRejected(f"step {state.step_index} is not a pause; nothing to promote")
    new, transitions = advance(spec, replace(state, phase="Progressing"), now)
    return new, [Transition("PromotedStep", f"promoted by hand to step {state.step_index}"),
                 *transitions]  # fmt: skip
