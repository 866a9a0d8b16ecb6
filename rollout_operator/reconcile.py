"""One operator tick for one rollout: commands, spec changes, analysis, steps, budget, status.

Called by the kopf timer (the only writer of a rollout's state) with the object's
latest spec, metadata and status; returns the status to write and the transitions
to post as Events. No kopf and no aiohttp here, so it is tested directly.

Commands from `kubectl llmrollout` arrive as the annotation
``llm-rollout.io/command: "<id> <verb> [weight]"``; a command is executed once,
when its id differs from ``status.lastCommand.id``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from proxy.config import ConfigError, LLMRolloutSpec, parse_duration, parse_spec
from rollout_operator import steps
from rollout_operator.analysis import judge, merge, merge_providers
from rollout_operator.hub import Hub, Key, Live
from rollout_operator.ledger import Ledger
from rollout_operator.steps import CommandRejected, RolloutState, Transition

COMMAND_ANNOTATION = "llm-rollout.io/command"
#: Steers no traffic: sidecars stop serving answers cached before it (`Live.cache_epoch`).
CACHE_FLUSH = "cache-flush"
#: Take a provider out of routing and fallback (`Live.disabled_providers`), and back.
SWITCHES = ("disable-provider", "enable-provider")
VERBS = ("promote", "promote-full", "abort", "retry", "pause", "resume", "set-weight",
         CACHE_FLUSH, *SWITCHES)  # fmt: skip
LEASE_TTL_SECONDS = 60.0
# status.history: the last analysis runs, each with the step and weight it judged, per-arm
# values and thresholds of every metric, requests and spend: the dashboard's charts over the
# rollout's life. Bounded so the object stays small (~0.9 KiB a run with three metrics,
# ~0.4 KiB more per provider of a traffic.providers split; etcd takes 1.5 MiB).
HISTORY_LENGTH = 120
# status.operatorHeartbeat moves on at least this often while the operator runs, so a
# reader (the dashboard) can tell a quiet rollout from an operator that is gone.
HEARTBEAT_SECONDS = 15.0


def _caps(spec: LLMRolloutSpec) -> tuple[Decimal | None, Decimal | None]:
    """The rollout's daily and monthly caps, as the cluster ledger enforces them."""
    return spec.budget.daily_usd, spec.budget.monthly_usd


def _load(hub: Hub, key: Key, spec: LLMRolloutSpec, status: dict[str, Any], gen: int,
          now: float) -> tuple[Live, list[Transition]]:  # fmt: skip
    """The rollout as the last operator run left it (status), or a fresh start."""
    persisted = RolloutState.from_status(status)
    daily, monthly = _caps(spec)
    ledger = Ledger.from_status(daily, status.get("budget") or {}, LEASE_TTL_SECONDS, monthly)
    version = int((status.get("sidecars") or {}).get("configVersion", 0))
    if persisted is None:
        state, transitions = steps.start(spec, now)
        observed = gen
    else:
        state, transitions = persisted, [Transition("Resumed", "operator resumed this rollout")]
        observed = int(status.get("observedGeneration", gen))
    live = Live(spec=spec, state=state, ledger=ledger, generation=observed, version=version)
    live.cache_epoch = int(status.get("cacheEpoch", 0))
    live.disabled_providers = frozenset(status.get("disabledProviders") or ())
    live.last_command = str((status.get("lastCommand") or {}).get("id", ""))
    live.command_record = status.get("lastCommand")
    live.history = list(status.get("history") or [])[-HISTORY_LENGTH:]
    live.analysed_at = now
    hub.rollouts[key] = live
    hub.on_namespace(key[0])
    return live, transitions


def _command(live: Live, annotation: str, now: float) -> tuple[dict[str, str], list[Transition]]:
    command_id, _, rest = annotation.partition(" ")
    verb, _, argument = rest.strip().partition(" ")
    record = {"id": command_id, "verb": verb}
    try:
        if verb not in VERBS:
            raise CommandRejected(f"unknown command {verb!r}; known: {', '.join(VERBS)}")
        if verb == CACHE_FLUSH:  # in any phase: a wrong cached answer is wrong in all of them
            live.cache_epoch += 1
            record["result"] = "done"
            return record, [Transition(
                "CacheFlushed", f"cache flush: sidecars stop serving answers cached before it "
                f"(cache epoch {live.cache_epoch})")]  # fmt: skip
        if verb in SWITCHES:  # in any phase: an outage does not wait for a step
            return _switch(live, verb, argument.strip(), record)
        weight = int(argument) if verb == "set-weight" and argument.strip().isdigit() else None
        state, transitions = steps.command(
            live.spec, live.state, cast(steps.Command, verb), now, weight
        )
    except CommandRejected as error:
        record["result"] = f"rejected: {error}"
        return record, [Transition("CommandRejected", f"{verb}: {error}", warning=True)]
    if verb == "retry":
        live.breaker_epoch += 1  # the providers get another chance on every sidecar
    live.state = state
    record["result"] = "done"
    return record, transitions


def _switch(
    live: Live, verb: str, provider: str, record: dict[str, str]
) -> tuple[dict[str, str], list[Transition]]:
    """`disable-provider` / `enable-provider`: the set is published with the effective config
    (`Hub.publish`) and kept in status.disabledProviders, so a restarted operator keeps it."""
    known = [p.name for p in live.spec.providers]
    if provider not in known:
        raise CommandRejected(
            f"unknown provider {provider!r}; this rollout's providers: {', '.join(known)}"
        )
    if verb == "disable-provider":
        live.disabled_providers |= {provider}
        message = f"{provider} taken out of routing and fallback; `enable-provider` brings it back"
    else:
        live.disabled_providers -= {provider}
        message = f"{provider} back in routing and fallback"
    record["result"] = "done"
    reason = "ProviderDisabled" if verb == "disable-provider" else "ProviderEnabled"
    return record, [Transition(reason, message)]


def _position(state: RolloutState) -> tuple[int, int, int, str]:
    """Where the rollout stands; answers from before a change of it answer another question."""
    return state.real_weight, state.shadow_percent, state.step_index, state.phase


def analysis_due(hub: Hub, key: Key, now: float) -> LLMRolloutSpec | None:
    """The spec to analyse if an analysis of this rollout is due now (for external queries)."""
    live = hub.rollouts.get(key)
    if live is None or live.spec.strategy is None or live.spec.strategy.analysis is None:
        return None
    due = now - live.analysed_at >= parse_duration(live.spec.strategy.analysis.interval)
    return live.spec if due else None


def _analyse(live: Live, now: float, external: dict[str, float | None]) -> list[Transition]:
    strategy = live.spec.strategy
    if strategy is None or strategy.analysis is None:
        return []
    if now - live.analysed_at < parse_duration(strategy.analysis.interval):
        return []
    live.analysed_at = now
    windows, live.windows = list(live.windows.values()), {}
    if live.state.phase in ("Healthy", "Degraded", "Aborted") or live.state.paused_by_user:
        return []
    arms, providers = (
        merge([w.arms for w in windows]),
        merge_providers([w.providers for w in windows]),
    )
    live.judgement = judge(strategy.analysis, arms, external, providers)
    judged = live.state
    live.state, transitions = steps.judged(
        live.spec, live.state, live.judgement.verdict, live.judgement.detail, now
    )
    entry = {"at": round(now, 3), "step": judged.step_index, "weight": judged.real_weight,
             "shadow": judged.shadow_percent,
             **live.judgement.to_status(), "spentUSD": live.ledger.to_status()["spentUSD"],
             "outcome": [t.reason for t in transitions]}  # fmt: skip
    live.history = [*live.history, entry][-HISTORY_LENGTH:]
    return transitions


def tick(
    hub: Hub, key: Key, raw_spec: dict[str, Any], meta: dict[str, Any],
    status: dict[str, Any], now: float, external: dict[str, float | None] | None = None,
) -> tuple[dict[str, Any], list[Transition]]:  # fmt: skip
    """Advance one rollout; returns the full status to write and what happened.

    `external` holds this tick's values of Prometheus-sourced metrics (see `analysis_due`).
    """
    generation = int(meta.get("generation") or 1)
    transitions: list[Transition] = []
    live = hub.rollouts.get(key)
    try:
        spec = parse_spec(raw_spec, f"{key[0]}/{key[1]}")
    except ConfigError as error:
        problems = "; ".join(error.problems)
        if live is None:
            return {"message": f"invalid spec, not started: {problems}"}, [
                Transition("InvalidSpec", problems, warning=True)
            ]
        if live.generation != generation:
            live.generation = generation
            transitions.append(Transition("InvalidSpec", f"kept the last good spec: {problems}",
                                          warning=True))  # fmt: skip
        spec = live.spec
    if live is None:
        live, loaded = _load(hub, key, spec, status, generation, now)
        transitions += loaded
    before = _position(live.state)
    restart = False  # analysis starts over: only answers from after this tick are judged
    if live.generation != generation and spec is not live.spec:
        live.spec, live.generation = spec, generation
        live.ledger.cap, live.ledger.monthly_cap = _caps(spec)
        live.state, changed = steps.spec_changed(spec, live.state, now)
        transitions += changed
        restart = True
    annotation = (meta.get("annotations") or {}).get(COMMAND_ANNOTATION, "")
    if annotation and annotation.partition(" ")[0] != live.last_command:
        live.last_command = annotation.partition(" ")[0]
        record, done = _command(live, annotation, now)
        live.command_record = record
        # Who asked is in the webhook's `rollout.command.requested` (same id): only the
        # API server knows the requester; this says what came of it.
        hub.audit.event(
            "rollout.command", namespace=key[0], rollout=key[1], command_id=record["id"],
            command=record["verb"], result=record["result"],
        )  # fmt: skip
        transitions += done
        # A flush moves no traffic: the analysis in progress still judges the same question.
        restart = restart or (record.get("result") == "done" and record["verb"] != CACHE_FLUSH)
    transitions += _analyse(live, now, external or {})
    live.state, walked = steps.advance(live.spec, live.state, now)
    transitions += walked
    restart = restart or before != _position(live.state)
    previous_period = live.ledger.period_start
    if live.ledger.roll_period(now) and previous_period and live.ledger.capped:
        transitions.append(
            Transition("BudgetPeriod", f"new budget period {live.ledger.period_start}")
        )
    live.ledger.expire(now)
    hub.publish(live)
    if restart:
        # Windows pushed from here on began under the new version (sidecars tag each
        # window with the version it began under); older ones, in flight, are dropped.
        live.windows.clear()
        live.judge_from = live.version
    # The record kept here, not the one in `status`: a tick started from an older copy of
    # the object (the timer racing the command handler) must not write an older record.
    return _status(hub, live, live.command_record, now), transitions


def _status(hub: Hub, live: Live, command: Any, now: float) -> dict[str, Any]:
    state = live.state
    healthy = state.phase in ("Healthy", "Progressing", "Paused")
    if now - live.heartbeat >= HEARTBEAT_SECONDS:
        live.heartbeat = now
    connected = hub.connected(live, now)
    return {
        **state.to_status(),
        "analysis": None if live.judgement is None else live.judgement.to_status(),
        "budget": live.ledger.to_status(),
        "sidecars": {
            "connected": len(connected),
            "configVersion": live.version,
            "names": connected,
        },
        "conditions": [
            {
                "type": "Available",
                "status": "True" if healthy else "False",
                "reason": state.phase,
                "message": state.message,
            },
            _seeing(live),
        ],
        "observedGeneration": live.generation,
        "lastCommand": command,
        "cacheEpoch": live.cache_epoch,
        "disabledProviders": sorted(live.disabled_providers),
        "history": live.history,
        "operatorHeartbeat": round(live.heartbeat, 3),
    }


def _seeing(live: Live) -> dict[str, str]:
    """Condition `AnalysisSeesData`: False while analyses keep finding too little to judge."""
    blind = live.state.inconclusive_streak >= steps.BLIND_AFTER
    detail = live.judgement.detail if live.judgement is not None else ""
    return {
        "type": "AnalysisSeesData",
        "status": "False" if blind else "True",
        "reason": "Inconclusive" if blind else "Enough",
        "message": (f"{live.state.inconclusive_streak} inconclusive analyses in a row: {detail}"
                    if blind else ""),
    }  # fmt: skip


def forget(hub: Hub, key: Key) -> None:
    live = hub.rollouts.pop(key, None)
    if live is not None:
        live.state = replace(live.state, phase="Aborted", real_weight=0, shadow_percent=0)
        live.changed.set()
