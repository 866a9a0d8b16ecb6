"""The kopf handlers: thin. One timer per rollout drives `reconcile.tick` and writes status.

A single writer per rollout (the timer) keeps the state free of races between
handlers; commands, spec changes and analysis are all picked up on the next tick
(`--tick`, 1 s by default), and a changed weight is pushed to the sidecars' open
long-polls at once.
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
from rollout_operator.tracing import record_tick


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
        settings.persistence.finalizer = "llm-rollout.io/operator"
        await on_startup()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await on_cleanup()

    @kopf.timer(GROUP, VERSION, PLURAL, interval=tick, registry=registry)
    async def advance(
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        namespace: str | None,
        name: str,
        body: kopf.Body,
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
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
            kopf.event(
                body,
                type="Warning" if transition.warning else "Normal",
                reason=transition.reason,
                message=transition.message,
            )

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
    def deleted(namespace: str | None, name: str, **_: Any) -> None:
        reconcile.forget(hub, (namespace or "", name))
