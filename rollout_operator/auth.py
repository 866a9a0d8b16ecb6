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
from rollout_operator.pods import PodCache, PodUnknown

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
    """Verifies with TokenReview, then looks the pod's labels up in the pod cache.

    A token's review is cached for `cache_seconds` (every sidecar calls every few
    seconds; a TokenReview per call would load the API server for nothing); calls with
    one token in flight share one review, and a call in the last quarter of its token's
    review starts the next one behind it. So an active sidecar's calls never wait for a
    review after its first: at 3,000 sidecars, which join within seconds of each other,
    their reviews all expired together a minute later and every call queued behind
    3,000 TokenReviews (docs/scaling.md). The pod it names is looked up on every call
    in `PodCache`, which one watch per namespace keeps current: a deleted pod's token
    stops working as soon as the deletion is seen, a pod whose labels changed is judged
    on the new ones, and a pod deleted and recreated under the same name (another uid
    than the token was issued to) does not inherit the old pod's token.

    Before the cache, each pod was read with a GET every 2 s; at 1,000 sidecars those
    reads (and the calls behind them) were what the operator spent its time on
    (docs/scaling.md).
    """

    def __init__(
        self, client: KubeClient, cache_seconds: float = 60.0, pods: PodCache | None = None
    ) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self.pods = pods or PodCache(client)
        self._cache: dict[tuple[str, str], tuple[float, str, str]] = {}  # -> until, pod, uid
        # Reviews in flight, shared by the calls that need them (single flight).
        self._reviews: dict[tuple[str, str], asyncio.Task[tuple[str, str]]] = {}

    async def authenticate(self, token: str, namespace: str, selector: LabelSelector | None) -> str:
        now, key = time.monotonic(), (token, namespace)
        cached = self._cache.get(key)
        if cached is None or cached[0] < now:
            review = _flight(self._reviews, key, lambda: self._reviewed(token, namespace))
            pod, uid = await asyncio.shield(review)  # a caller leaving does not cancel the others'
        else:
            until, pod, uid = cached
            if until - now < self.cache_seconds / 4:  # renewed behind this call, not in its way
                _flight(self._reviews, key, lambda: self._reviewed(token, namespace))
        try:
            labels = await self.pods.labels(namespace, pod, uid)
        except PodUnknown as error:
            self._cache.pop((token, namespace), None)
            raise Denied(401, str(error), f"pod {namespace}/{pod}") from None
        if not selects(selector, labels):
            raise Denied(
                403,
                f"pod {namespace}/{pod} is not selected by this rollout",
                f"pod {namespace}/{pod}",
            )
        return pod

    async def close(self) -> None:
        await self.pods.close()

    async def _reviewed(self, token: str, namespace: str) -> tuple[str, str]:
        """Review the token now and cache the answer (a refusal drops what was cached)."""
        sent = time.monotonic()
        try:
            pod, uid = await self._review(token, namespace)
        except Denied:
            self._cache.pop((token, namespace), None)
            raise
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: tokens rotate, old ones must not pile up
        self._cache[(token, namespace)] = (sent + self.cache_seconds, pod, uid)
        return pod, uid

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
