"""The pods of each namespace sidecars call from, kept in memory by one list and watch.

The control channel checks every call's pod (named by its TokenReview) against the
rollout's selector. Reading the pod per call, or every few seconds per pod, is N / 2
GETs a second at the API server for N sidecars, and at 1,000 sidecars the calls queued
behind those reads (docs/scaling.md). Here one LIST and one WATCH per namespace keep
each pod's uid and labels; a call looks its pod up in memory, and a deleted pod is
gone from the cache the moment its DELETED event arrives.

A cache that may have missed events must not vouch for a pod: while the watch is down
(the API server unreachable, the stream cut), lookups are answered from the cache for
`stale_seconds` only, then wait for it to be listed again, and are refused when that
does not happen in time. So a deleted pod's token stops working within `stale_seconds`
even when the watch is lost, as it did with the per-pod reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rollout_operator.kube import KubeClient, KubeError

log = logging.getLogger("llm_rollout.operator.pods")


class PodUnknown(LookupError):
    """No pod of that name (and uid) is known, or the cache cannot currently vouch for any."""


@dataclass
class _Namespace:
    #: pod name -> (uid, labels)
    pods: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    #: Until when (time.monotonic) the cache holds what the API server holds: infinite
    #: while the watch is open, `stale_seconds` past its loss, 0 before the first list.
    trusted_until: float = 0.0
    #: Set (and replaced) whenever the pods or the trust change: lookups waiting on a pod
    #: that is not there yet wake up.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    error: str = "not listed yet"

    def touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class PodCache:
    """Pod uid and labels per namespace, from a LIST then a WATCH started on first lookup."""

    def __init__(
        self, client: KubeClient, stale_seconds: float = 4.0, wait_seconds: float = 2.0
    ) -> None:
        self.client = client
        self.stale_seconds = stale_seconds
        #: How long a lookup waits for a pod the cache does not hold (yet): the watch
        #: delivers a new pod's ADDED event soon after the pod exists, which its sidecar's
        #: first call can beat.
        self.wait_seconds = wait_seconds
        self._namespaces: dict[str, _Namespace] = {}

    async def labels(self, namespace: str, pod: str, uid: str) -> dict[str, str]:
        """`pod`'s labels; raise PodUnknown when no such pod (with this uid, if given) is
        known within `wait_seconds`."""
        space = self.follow(namespace)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            now = time.monotonic()
            found = space.pods.get(pod)
            if space.trusted_until > now and found is not None and (not uid or found[0] == uid):
                return found[1]
            if now >= deadline:
                break
            with contextlib.suppress(TimeoutError):  # not wait_for: it can eat a cancel
                async with asyncio.timeout(deadline - now):
                    await space.changed.wait()
        if space.trusted_until <= time.monotonic():
            raise PodUnknown(f"cannot check pods in {namespace}: {space.error}")
        if found is not None:
            raise PodUnknown(f"pod {namespace}/{pod} was recreated; the token was for the old one")
        raise PodUnknown(f"pod {namespace}/{pod} is gone")

    def follow(self, namespace: str) -> _Namespace:
        """Start keeping `namespace`'s pods (once; later calls return what is kept).

        The operator calls this as soon as it manages a rollout in the namespace, so the
        watch is open before the first sidecar calls: a pod deleted while the first list
        was on its way is then seen deleted even by an API server that (like kmock) does
        not replay from the list's resourceVersion.
        """
        space = self._namespaces.get(namespace)
        if space is None:
            space = self._namespaces[namespace] = _Namespace()
            space.task = asyncio.create_task(self._follow(namespace, space))
        return space

    async def close(self) -> None:
        for space in self._namespaces.values():
            if space.task is not None:
                space.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await space.task
        self._namespaces.clear()

    async def _follow(self, namespace: str, space: _Namespace) -> None:
        """List, then watch from the list's version; list again when the version is too
        old (410), reconnect after errors with a growing pause."""
        path = f"/api/v1/namespaces/{namespace}/pods"
        version, pause = "", 0.5
        while True:
            try:
                if not version:
                    version = await self._list(path, space)
                    self._trust(space)  # a fresh list: complete until now
                async for event in self.client.watch(path, version, lambda: self._trust(space)):
                    version = self._apply(space, event) or version
                    pause = 0.5
            except KubeError as error:
                if error.status == 410:  # events were missed: only a new list is complete
                    version = ""
                    now = time.monotonic()
                    space.trusted_until = min(space.trusted_until, now + self.stale_seconds)
                    continue
                self._lost(namespace, space, str(error))
            except (OSError, ValueError, TimeoutError) as error:
                self._lost(namespace, space, str(error) or type(error).__name__)
            else:  # the server ended the stream (they do every few minutes): resume
                continue
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    @staticmethod
    def _trust(space: _Namespace) -> None:
        """The cache is complete: just listed, or a watch resumes from its last version."""
        space.trusted_until = float("inf")
        space.error = ""
        space.touch()

    def _lost(self, namespace: str, space: _Namespace, error: str) -> None:
        if space.trusted_until == float("inf"):
            space.trusted_until = time.monotonic() + self.stale_seconds
        if error != space.error:  # once per kind of failure, not per retry (e.g. RBAC 403)
            log.warning("cannot watch the pods of %s (%s); retrying", namespace, error)
        space.error = error
        space.touch()

    async def _list(self, path: str, space: _Namespace) -> str:
        """Replace the namespace's pods with a fresh list; its resourceVersion."""
        pods: dict[str, tuple[str, dict[str, str]]] = {}
        query, version = "", ""
        while True:  # in pages, as the API server hands out large lists
            body = await self.client.request("GET", f"{path}?limit=500{query}")
            for item in body.get("items") or []:
                name, entry = _entry(item)
                pods[name] = entry
            meta = body.get("metadata") or {}
            version = str(meta.get("resourceVersion") or "")
            if not meta.get("continue"):
                break
            query = f"&continue={meta['continue']}"
        space.pods = pods
        return version

    @staticmethod
    def _apply(space: _Namespace, event: dict[str, Any]) -> str:
        """One watch event into the cache; the resourceVersion to resume from."""
        obj = event.get("object") or {}
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        kind = event.get("type")
        if kind in ("ADDED", "MODIFIED"):
            name, entry = _entry(obj)
            space.pods[name] = entry
        elif kind == "DELETED":
            space.pods.pop(str((obj.get("metadata") or {}).get("name")), None)
        else:  # BOOKMARK: only the version moves on
            return version
        space.touch()
        return version


def _entry(pod: dict[str, Any]) -> tuple[str, tuple[str, dict[str, str]]]:
    meta = pod.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return str(meta.get("name")), (str(meta.get("uid") or ""), labels)
