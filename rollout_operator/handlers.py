"""The kopf handlers: thin. A timer per rollout drives `reconcile.tick` and writes status.

Analysis runs on the timer's tick (`--tick`, 1 s by default). A spec change (a new
weight, the kill switch) and a command from `kubectl llmrollout` (its annotation
changing) each run a tick at once, so they reach the sidecars' open long-polls within
the watch's delay, not up to a tick later. All handlers call the same synchronous
`reconcile.tick`, which never awaits: two of them never interleave on a rollout's
state, and the status each writes is the whole state at its moment.

Logs are for people: kopf's "Timer ... succeeded" line at every tick of every rollout
is dropped (`QuietSuccesses`), and each transition is logged once, as its Event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kopf

from rollout_operator import prometheus, reconcile
from rollout_operator.crd import GROUP, PLURAL, VERSION
from rollout_operator.hub import Hub
from rollout_operator.reconcile import COMMAND_ANNOTATION as COMMAND_KEY
from rollout_operator.tracing import record_tick

log = logging.getLogger("llm_rollout.operator")


class QuietSuccesses(logging.Filter):
    """Drops kopf's INFO line for every handler run that succeeded (one per rollout per
    tick); failures, retries and everything at WARNING and above stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and str(record.msg).endswith("succeeded."))


def register(
    registry: kopf.OperatorRegistry,
    hub: Hub,
    *,
    tick: float,
    on_startup: Callable[[], Awaitable[None]],
    on_cleanup: Callable[[], Awaitable[None]],
    session: Callable[[], aiohttp.ClientSession],
) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster ServiceAccount first, then KUBECONFIG (a private registry has no default)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.INFO
        for name in ("kopf.objects", "kopf.activities"):
            logging.getLogger(name).addFilter(QuietSuccesses())
        settings.persistence.finalizer = "llm-rollout.io/operator"
        await on_startup()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await on_cleanup()

    async def run_tick(
        spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, namespace: str | None, name: str,
        body: kopf.Body, patch: kopf.Patch,
    ) -> None:  # fmt: skip
        key = (namespace or "", name)
        started_ns = time.time_ns()
        due = reconcile.analysis_due(hub, key, time.time())
        external = await prometheus.collect(session(), due) if due is not None else {}
        new_status, transitions = reconcile.tick(
            hub, key, dict(spec), dict(meta), dict(status), time.time(), external
        )
        live = hub.rollouts.get(key)
        if hub.tracer is not None and (due is not None or transitions):
            record_tick(hub.tracer, key, started_ns, due is not None, transitions, live)
        if live is None or new_status != live.written_status:
            patch.status.update(new_status)
            if live is not None:
                live.written_status = new_status
        for transition in transitions:
            (log.warning if transition.warning else log.info)(
                "%s/%s: %s: %s", key[0], key[1], transition.reason, transition.message
            )
            kopf.event(
                body,
                type="Warning" if transition.warning else "Normal",
                reason=transition.reason,
                message=transition.message,
            )

    @kopf.timer(GROUP, VERSION, PLURAL, interval=tick, registry=registry)
    async def advance(
        spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, namespace: str | None, name: str,
        body: kopf.Body, patch: kopf.Patch, **_: Any,
    ) -> None:  # fmt: skip
        await run_tick(spec, meta, status, namespace, name, body, patch)

    @kopf.on.field(GROUP, VERSION, PLURAL, field=("metadata", "annotations", COMMAND_KEY),
                   registry=registry)  # fmt: skip
    async def command(
        spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, namespace: str | None, name: str,
        body: kopf.Body, patch: kopf.Patch, new: Any, **_: Any,
    ) -> None:  # fmt: skip
        """A `kubectl llmrollout` command: acted on now, not at the next tick."""
        if new:
            await run_tick(spec, meta, status, namespace, name, body, patch)

    @kopf.on.field(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def spec_changed(
        spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, namespace: str | None, name: str,
        body: kopf.Body, patch: kopf.Patch, **_: Any,
    ) -> None:  # fmt: skip
        """A spec change (a new weight, the kill switch): published now, not at the next tick."""
        await run_tick(spec, meta, status, namespace, name, body, patch)

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
    def deleted(namespace: str | None, name: str, **_: Any) -> None:
        reconcile.forget(hub, (namespace or "", name))
