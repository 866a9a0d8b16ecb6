"""What `kubectl llmrollout` and its dashboard do to rollouts: one implementation for both.

A command patches the annotation ``llm-rollout.io/command: "<id> <verb> [weight]"``; the
operator runs each id once and records the outcome in ``status.lastCommand``, which
`command` waits for. API errors become messages that say what to do next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollout_operator.crd import GROUP, PLURAL, VERSION
from rollout_operator.kube import KubeClient, KubeError, rollout_path
from rollout_operator.reconcile import COMMAND_ANNOTATION, VERBS

RESOURCE = f"{PLURAL}.{GROUP}"
SUCCEEDED, FAILED, WAITING = "Healthy", ("Degraded", "Aborted"), ("Progressing", "Paused")


class SteerError(RuntimeError):
    """An API error explained for the person at the keyboard: what failed and what to do."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # "abort: done; phase Aborted, 0% real"


async def explain(
    client: KubeClient, error: KubeError, verb: str, namespace: str | None, name: str = ""
) -> SteerError:
    """Turn an API error into what to do about it (the CRD missing, RBAC, a wrong name)."""
    where = f"{namespace}/{name}" if name else f"namespace {namespace or '(all)'}"
    scope = f"-n {namespace}" if namespace else "-A"
    if error.status == 401:
        return SteerError(
            f"{where}: the API server rejected the credentials of context "
            f"{client.context!r} ({error.message}); log in again (an expired token or exec "
            "credential plugin), or pick another with --context"
        )
    if error.status == 403:
        return SteerError(
            f"{where}: forbidden: {error.message}. Context {client.context!r} needs '{verb}' on "
            f"{RESOURCE}; check with `kubectl auth can-i {verb} {RESOURCE} {scope}` and ask "
            "the cluster's admin for a Role that grants it"
        )
    if error.status == 404:
        try:
            await client.request("GET", f"/apis/{GROUP}/{VERSION}")
        except KubeError as discovery:
            if discovery.status == 404:
                return SteerError(
                    f"the LLMRollout CRD ({RESOURCE}) is not installed in the cluster of context "
                    f"{client.context!r}: install llm-rollout (docs/install.md: `helm install "
                    "llm-rollout charts/llm-rollout` or `kubectl apply -f manifests/`), or "
                    "pick the right cluster with --context"
                )
        if name:
            return SteerError(
                f"rollout {where} not found; `kubectl llmrollout list -A` lists the rollouts "
                "you can see"
            )
    return SteerError(f"{where}: {error}")


async def get(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = await client.request("GET", rollout_path(namespace, name))
    except KubeError as error:
        raise await explain(client, error, "get", namespace, name) from error
    return obj


async def rollouts(client: KubeClient, namespace: str | None) -> list[dict[str, Any]]:
    """The rollouts of `namespace`, or of every namespace (None), by namespace and name."""
    try:
        listed = await client.request("GET", rollout_path(namespace))
    except KubeError as error:
        raise await explain(client, error, "list", namespace) from error
    items: list[dict[str, Any]] = listed.get("items") or []
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


async def command(
    client: KubeClient,
    namespace: str,
    name: str,
    verb: str,
    argument: str = "",
    within: float = 15.0,
) -> Outcome:
    """Send one command and wait for the operator's answer to it."""
    if verb not in VERBS:
        raise SteerError(f"unknown command {verb!r}; known: {', '.join(VERBS)}")
    command_id = str(time.time_ns())
    value = f"{command_id} {verb} {argument}".strip()
    path = rollout_path(namespace, name)
    patch = {"metadata": {"annotations": {COMMAND_ANNOTATION: value}}}
    try:
        await client.request("PATCH", path, patch, "application/merge-patch+json")
    except KubeError as error:
        raise await explain(client, error, "patch", namespace, name) from error
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = (await get(client, namespace, name)).get("status") or {}
        last = status.get("lastCommand") or {}
        if last.get("id") == command_id:
            result = str(last.get("result", ""))
            text = (
                f"{verb}: {result}; phase {status.get('phase')}, {status.get('realWeight')}% real"
            )
            return Outcome(result == "done", text)
        await asyncio.sleep(0.2)
    return Outcome(
        False,
        f"{verb}: sent, but the operator has not acted on it within {within:g} s; is it running?",
    )


async def wait(
    client: KubeClient,
    namespace: str,
    name: str,
    within: float,
    progress: Callable[[dict[str, Any]], None],
) -> int:
    """Until the rollout is Healthy (0), Degraded or Aborted (1), or `within` seconds pass (2);
    `progress` sees the status each time phase, weight, step or message change."""
    deadline = time.monotonic() + within
    shown: tuple[Any, ...] = ()
    while True:
        status = (await get(client, namespace, name)).get("status") or {}
        seen = tuple(status.get(k) for k in ("phase", "realWeight", "currentStepIndex", "message"))
        if seen != shown:
            progress(status)
            shown = seen
        phase = status.get("phase")
        if phase == SUCCEEDED:
            return 0
        if phase in FAILED:
            return 1
        if time.monotonic() >= deadline:
            return 2
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
