"""Who is calling the control channel: a sidecar whose pod the rollout selects.

Sidecars present their projected ServiceAccount token. `TokenReviewAuthenticator`
asks the API server whether the token is valid and which pod it was issued to,
then checks that pod's labels against the rollout's selector. The interface is one
method, so tests and other deployments can plug in their own.
"""

from __future__ import annotations

from typing import Protocol

from rollout_operator.kube import KubeClient, KubeError

#: The audience sidecars request for their projected token (checked by TokenReview).
AUDIENCE = "llm-rollout"
POD_NAME = "authentication.kubernetes.io/pod-name"


class Denied(Exception):
    """Refused; `status` is 401 (who are you?) or 403 (not for this rollout)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
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
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def authenticate(
        self, token: str, namespace: str, selector: dict[str, dict[str, str]] | None
    ) -> str:
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
            raise Denied(403, f"{username or 'caller'} is not a pod in namespace {namespace}")
        pod = str(pods[0])
        try:
            body = await self.client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        except KubeError as error:
            raise Denied(403, f"pod {namespace}/{pod}: {error}") from None
        if not selects(selector, (body.get("metadata") or {}).get("labels") or {}):
            raise Denied(403, f"pod {namespace}/{pod} is not selected by this rollout")
        return pod
