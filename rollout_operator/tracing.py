"""Spans for the operator's work: a reconcile that changed something, and analyses.

A rollout is ticked every second; most ticks change nothing and are not traced. A
tick that ran an analysis or made a transition (a step, a rollback, a command) is
one span, ``reconcile {namespace}/{name}``, with what it found. Set up like the
sidecar's (`proxy.config.telemetry`): on only when an OTLP endpoint is set.
"""

from __future__ import annotations

import time

from opentelemetry.trace import Status, StatusCode, Tracer

from rollout_operator.hub import Key, Live
from rollout_operator.steps import Transition


def record_tick(
    tracer: Tracer,
    key: Key,
    started_ns: int,
    analysed: bool,
    transitions: list[Transition],
    live: Live | None,
) -> None:
    """One span for a tick worth seeing, from `started_ns` to now."""
    namespace, name = key
    attributes: dict[str, str | int | bool | list[str]] = {
        "k8s.namespace.name": namespace,
        "llm_rollout.rollout": name,
        "llm_rollout.analysis": analysed,
        "llm_rollout.transitions": [t.reason for t in transitions],
    }
    if live is not None:
        attributes["llm_rollout.phase"] = str(live.state.phase)
        attributes["llm_rollout.real_weight"] = live.state.real_weight
        attributes["llm_rollout.step"] = live.state.step_index
        if analysed and live.judgement is not None:
            attributes["llm_rollout.analysis.verdict"] = str(live.judgement.verdict)
            attributes["llm_rollout.analysis.detail"] = live.judgement.detail
    span = tracer.start_span(
        f"reconcile {namespace}/{name}", start_time=started_ns, attributes=attributes
    )
    if any(t.warning for t in transitions):
        span.set_status(Status(StatusCode.ERROR, ", ".join(t.reason for t in transitions)))
    span.end(end_time=time.time_ns())
