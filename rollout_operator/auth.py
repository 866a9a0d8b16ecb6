"""Who is calling the control channel: a sidecar whose pod the rollout selects.

Sidecars present their projected ServiceAccount token. `TokenReviewAuthenticator`
asks the API server whether the token is valid and which pod it was issued to,
then checks that pod's labels against the rollout's selector. The interface is one
method, so tests and other deployments can plug in their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from proxy.config import LabelSelector, selects
from rollout_operator.kube import KubeClient, KubeError

#: The audience sidecars request for their projected token (checked by TokenReview).
AUDIENCE = "llm-rollout"
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"


_T = TypeVar("_T")


def _flight(
    flights: dict[tuple[str, str], asyncio.Task[_T]],
    key: tuple[str, str],
    start: Callable[[], Coroutine[Any, Any, _T]],
) -> asyncio.Task[_T]:
    """The one call in flight for `key`, started if there is none (single flight)."""
    task = flights.get(key)
    if task is None:
        task = flights[key] = asyncio.ensure_future(start())
        task.add_done_callback(lambda done: _forget(flights, key, done))
    return task


def _forget(
    flights: dict[tuple[str, str], Any], key: tuple[str, str], done: asyncio.Task[Any]
) -> None:
    flights.pop(key, None)
    if not done.cancelled():
        done.exception()  # retrieved: a read nobody awaited (run behind a call) logs nothing


class Denied(Exception):
    """Refused; `status` is 401 (who are you?) or 403 (not for this rollout)."""

    def __init__(self, status: int, reason: str, who: str = "unknown") -> None:
        self.status = status
        #: The caller as far as it is known (ServiceAccount or pod), for the audit trail.
        self.who = who
        super().__init__(reason)


class Authenticator(Protocol):
    async def authenticate(self, token: str, namespace: str, selector: LabelSelector | None) -> str:
        """The caller's pod name, or raise `Denied`."""
        ...


class TokenReviewAuthenticator:
    """Verifies with TokenReview, then reads the pod's labels.

    A token's review is cached for `cache_seconds` (every sidecar calls every few
    seconds; a TokenReview per call would load the API server for nothing), but the
    pod it names is read again once its last read is `pod_check_seconds` old: a token
    outlives its pod by at most twice that long, and a pod whose labels changed is
    judged on the new ones. A pod read that finds no pod, or one with another uid than
    the token was issued to (deleted and recreated under the same name), drops the token.

    At fleet scale (docs/scaling.md) the reads must not sit in the calls' path: a call
    whose pod was read less than two periods ago is answered on that read while one
    fresh read runs behind it, and concurrent calls of one pod (its long-poll, stats
    and slice calls arrive together) share one read, as calls with one token share
    one review. Before, every call past the period waited for its own pod GET, and at
    1,000 sidecars the long-polls carrying a weight change queued behind them.
    """

    def __init__(
        self, client: KubeClient, cache_seconds: float = 60.0, pod_check_seconds: float = 2.0
    ) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self.pod_check_seconds = pod_check_seconds
        self._cache: dict[tuple[str, str], tuple[float, str, str]] = {}  # -> until, pod, uid
        self._pods: dict[tuple[str, str], tuple[float, str, dict[str, str]]] = {}
        # Reads in flight, shared by the calls that need them (single flight).
        self._reviews: dict[tuple[str, str], asyncio.Task[tuple[str, str]]] = {}
        self._reads: dict[tuple[str, str], asyncio.Task[dict[str, str]]] = {}

    async def authenticate(self, token: str, namespace: str, selector: LabelSelector | None) -> str:
        now = time.monotonic()
        cached = self._cache.get((token, namespace))
        if cached is None or cached[0] < now:
            review = _flight(
                self._reviews, (token, namespace), lambda: self._review(token, namespace)
            )
            pod, uid = await asyncio.shield(review)  # a caller leaving does not cancel the others'

            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: tokens rotate, old ones must not pile up
            self._cache[(token, namespace)] = (now + self.cache_seconds, pod, uid)
        else:
            _, pod, uid = cached
        try:
            labels = await self._labels(namespace, pod, uid, now)
        except Denied:
            self._cache.pop((token, namespace), None)
            raise
        if not selects(selector, labels):
            raise Denied(
                403,
                f"pod {namespace}/{pod} is not selected by this rollout",
                f"pod {namespace}/{pod}",
            )
        return pod

    async def _labels(self, namespace: str, pod: str, uid: str, now: float) -> dict[str, str]:
        """The pod's labels, read at most two `pod_check_seconds` ago; Denied when it is gone."""
        key = (namespace, pod)
        seen = self._pods.get(key)
        if seen is not None and (not uid or seen[1] == uid):
            if seen[0] > now:
                return seen[2]
            if seen[0] + self.pod_check_seconds > now:  # due: answer now, read behind it
                _flight(self._reads, key, lambda: self._read(namespace, pod, uid))
                return seen[2]
        return await asyncio.shield(
            _flight(self._reads, key, lambda: self._read(namespace, pod, uid))
        )

    async def _read(self, namespace: str, pod: str, uid: str) -> dict[str, str]:
        """Read the pod now: its labels, cached for `pod_check_seconds`."""
        try:
            body = await self.client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        except KubeError as error:
            self._pods.pop((namespace, pod), None)
            raise Denied(401, f"pod {namespace}/{pod} is gone: {error}") from None
        metadata = body.get("metadata") or {}
        actual = str(metadata.get("uid") or "")
        if uid and actual and actual != uid:
            raise Denied(401, f"pod {namespace}/{pod} was recreated; the token was for the old one")
        if len(self._pods) > 10_000:
            self._pods.clear()
        labels = dict(metadata.get("labels") or {})
        self._pods[(namespace, pod)] = (time.monotonic() + self.pod_check_seconds, actual, labels)
        return labels

    async def _review(self, token: str, namespace: str) -> tuple[str, str]:
        """The pod (name, uid) the token was issued to, as the API server vouches."""
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [AUDIENCE]},
        }
        try:
            result = await self.client.request(
                "POST", "/apis/authentication.k8s.io/v1/tokenreviews", review
            )
        except KubeError as error:
            raise Denied(401, f"TokenReview failed: {error}") from None
        status = result.get("status") or {}
        if not status.get("authenticated"):
            raise Denied(401, status.get("error") or "token not authenticated")
        user = status.get("user") or {}
        pods = (user.get("extra") or {}).get(POD_NAME) or []
        username = str(user.get("username", ""))
        if not pods or not username.startswith(f"system:serviceaccount:{namespace}:"):
            raise Denied(
                403, f"{username or 'caller'} is not a pod in namespace {namespace}", username
            )
        uids = (user.get("extra") or {}).get(POD_UID) or []
        return str(pods[0]), str(uids[0]) if uids else ""
