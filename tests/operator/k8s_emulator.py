"""kmock's KubernetesEmulator with the bits kopf relies on, for running the operator for real.

kmock 0.8 stores objects without `resourceVersion`, `uid` or `generation`; kopf's
JSON-patches start with a `test` op on `/metadata/resourceVersion`. This subclass
stamps those on create, bumps `resourceVersion` on every PATCH (and `generation`
when the spec changes), and answers 422 to a stale `test`, as the API server does.
"""

from __future__ import annotations

import datetime
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import kmock
from kmock._internal import enums, rendering  # the request type the handler hook receives

from rollout_operator.crd import GROUP, PLURAL, VERSION

_versions = itertools.count(1)


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    # Bearer token -> HTTP status, checked when set: 200 lets the request in, 403 answers
    # Forbidden (RBAC says no); a token not listed gets 401, as a real API server does.
    tokens: dict[str, int] | None = None

    async def _handle(self, request: rendering.Request) -> Any:
        if self.tokens is not None:
            headers = {k.lower(): v for k, v in request.headers.items()}
            status = self.tokens.get(headers.get("authorization", "").removeprefix("Bearer "), 401)
            if status != 200:
                reason = "Forbidden" if status == 403 else "Unauthorized"
                message = f"{request.url.path} is {reason.lower()} for this user"
                raise kmock.KubernetesError(status=status, reason=reason, message=message)
        if request.resource is not None and isinstance(request.data, dict | list):
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name"):  # Events and TokenReviews come with generateName or none
                    meta["name"] = meta.get("generateName", "obj-") + uuid.uuid4().hex[:8]
                meta.update(
                    uid=str(uuid.uuid4()),
                    resourceVersion=str(next(_versions)),
                    generation=1,
                    creationTimestamp=datetime.datetime.now(datetime.UTC).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                )
                if request.namespace:
                    meta.setdefault("namespace", request.namespace)
            elif request.action == enums.action.UPDATE and request.name is not None:
                self._stamp_update(request)
        return await super()._handle(request)

    def _stamp_update(self, request: rendering.Request) -> None:
        if request.resource is None or request.name is None:
            return  # not an object's URL: the base class answers it
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # the base class answers 404
        current = self.objects[key].raw
        meta = current.get("metadata", {})
        version = str(next(_versions))
        if isinstance(request.data, list):
            for op in request.data:
                stale = op.get("value") != meta.get("resourceVersion")
                if (
                    op.get("op") == "test"
                    and op.get("path") == "/metadata/resourceVersion"
                    and stale
                ):
                    raise kmock.KubernetesError(
                        status=422, reason="Invalid", message="resourceVersion test failed"
                    )
            request.data.append(
                {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
            )
            return
        patch_meta = request.data.setdefault("metadata", {})
        patch_meta["resourceVersion"] = version
        spec = request.data.get("spec")
        if request.subresource is None and spec is not None and spec != current.get("spec"):
            patch_meta["generation"] = int(meta.get("generation", 1)) + 1


def token_review(k8s: Emulator, namespace: str) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """TokenReviews as the API server answers them for projected pod tokens: here a token
    ``token-<pod>`` is valid while the pod exists in `namespace`."""

    async def review(request: Any) -> dict[str, Any]:
        token = request.data["spec"]["token"]
        pod = token.removeprefix("token-")
        if (
            not token.startswith("token-")
            or (kmock.resource("v1/pods"), namespace, pod) not in k8s.objects
        ):
            return {"status": {"authenticated": False, "error": "invalid bearer token"}}
        return {"status": {"authenticated": True, "audiences": ["llm-rollout"], "user": {
            "username": f"system:serviceaccount:{namespace}:app",
            "extra": {"authentication.kubernetes.io/pod-name": [pod]}}}}  # fmt: skip

    return review


def declare(emulator: Emulator) -> None:
    """The resources kopf discovers before it starts watching (see DESIGN.md)."""
    emulator.resources["v1/namespaces"] = kmock.ResourceInfo(namespaced=False, kind="Namespace")
    emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
        namespaced=False, kind="CustomResourceDefinition"
    )
    emulator.resources["v1/events"] = kmock.ResourceInfo(namespaced=True, kind="Event")
    emulator.resources["v1/pods"] = kmock.ResourceInfo(namespaced=True, kind="Pod")
    emulator.resources[f"{GROUP}/{VERSION}/{PLURAL}"] = kmock.ResourceInfo(
        namespaced=True, kind="LLMRollout", singular="llmrollout", shortnames={"llmro"},
        verbs={"list", "watch", "get", "patch", "create", "delete"}, subresources={"status"},
    )  # fmt: skip


def kubeconfig(server: str, user: str, token: str, namespace: str, context: str = "kmock") -> str:
    """A kubeconfig (JSON is YAML) whose one context reaches the emulator as `user`."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "kmock", "cluster": {"server": server.rstrip("/")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "kmock", "user": user,
                                                   "namespace": namespace}}],
    })  # fmt: skip
