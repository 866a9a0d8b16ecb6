"""Who is calling the control channel: a sidecar whose pod the rollout selects.

Sidecars present their projected ServiceAccount token. `TokenReviewAuthenticator`
asks the API server whether the token is valid and which pod it was issued to,
then checks that pod's labels against the rollout's selector. The interface is one
method, so tests and other deployments can plug in their own.
"""

from __future__ import annotations

import time
from typing import Protocol

from rollout_operator.kube import KubeClient, KubeError

#: The audience sidecars request for their projected token (checked by TokenReview).
AUDIENCE = "llm-rollout"
POD_NAME = "authentication.kubernetes.io/pod-name"


class Denied(Exception):
    """Refused; `status` is 401 (who are you?) or 403 (not for this rollout)."""

    def __init__(self, status: int, reason: str, who: str = "unknown") -> None:
        self.status = status
        #: The caller as far as it is known (ServiceAccount or pod), for the audit trail.
        self.who = who
        super().__init__(reason)


class Authenticator(Protocol):
    async def authenticate(
        self, token: str, namespace: str, selector: dict[str, dict[str, str]] | None
    ) -> str:
        """The caller's pod name, or raise `Denied`."""
        ...


def selects(selector: dict[str, dict[str, str]] | None, labels: dict[str, str]) -> bool:
    """Whether `matchLabels` selects a pod with `labels` (no selector selects every pod)."""
    wanted = (selector or {}).get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


class TokenReviewAuthenticator:
    """Verifies with TokenReview, then reads the pod's labels.

    Answers are cached for `cache_seconds` per token: every sidecar calls every few
    seconds, and two API calls per stats push would load the API server for nothing.
    """

    def __init__(self, client: KubeClient, cache_seconds: float = 60.0) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[float, str, dict[str, str]]] = {}

    async def authenticate(
        self, token: str, namespace: str, selector: dict[str, dict[str, str]] | None
    ) -> str:
        now = time.monotonic()
        cached = self._cache.get((token, namespace))
        if cached is None or cached[0] < now:
            pod, labels = await self._review(token, namespace)
            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: tokens rotate, old ones must not pile up
            self._cache[(token, namespace)] = (now + self.cache_seconds, pod, labels)
        else:
            _, pod, labels = cached
        if not selects(selector, labels):
            raise Denied(
                403,
                f"pod {namespace}/{pod} is not selected by this rollout",
                f"pod {namespace}/{pod}",
            )
        return pod

    async def _review(self, token: str, namespace: str) -> tuple[str, dict[str, str]]:
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
        pod = str(pods[0])
        try:
            body = await self.client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        except KubeError as error:
            raise Denied(403, f"pod {namespace}/{pod}: {error}") from None
        return pod, dict((body.get("metadata") or {}).get("labels") or {})
