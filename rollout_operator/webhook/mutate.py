"""What the injection webhook does to a pod: pod spec in, JSONPatch out. Pure.

Kept apart from the HTTP server so that every decision (opt-out, which rollout,
idempotence, what the sidecar looks like) is a plain function tests drive with
real pod specs, and the server stays a thin AdmissionReview wrapper.

The sidecar is a *native* sidecar: an init container with `restartPolicy: Always`,
so it starts (and passes its startup probe) before the app's containers and is
stopped after them. Provider keys are mounted into it alone, at
``/var/run/secrets/llm-rollout/<secret>/<key>`` (the layout `proxy.server.keys`
reads); the app containers get only the SDK base-URL variables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.config import selects

SIDECAR_NAME = "llm-rollout-proxy"
#: Pod annotations and labels the webhook reads or writes.
INJECT_ANNOTATION = "llm-rollout.io/inject"
ROLLOUT_ANNOTATION = "llm-rollout.io/rollout"
INJECTED_LABEL = "llm-rollout.io/injected"
#: Where Secrets and the control-channel token are mounted in the sidecar.
SECRETS_DIR = "/var/run/secrets/llm-rollout"
TOKEN_DIR = "/var/run/secrets/llm-rollout-token"
TOKEN_VOLUME = "llm-rollout-token"
TMP_VOLUME = "llm-rollout-tmp"
#: The image's built-in start-up config: everything to the mock until the operator speaks.
STARTUP_CONFIG = "/etc/llm-rollout/startup.yaml"
ADMIN_PORT_NAME = "llm-rollout-adm"
#: Non-root identity of the image's user (see the Dockerfile).
SIDECAR_UID = 10001

Patch = list[dict[str, Any]]


@dataclass(frozen=True)
class SidecarTemplate:
    """How injected sidecars look; the operator builds it from its settings (chart values)."""

    image: str
    control_url: str
    data_port: int = 8100
    admin_port: int = 8101
    resources: Mapping[str, Any] = field(
        default_factory=lambda: {"requests": {"cpu": "20m", "memory": "48Mi"},
                                 "limits": {"memory": "128Mi"}}
    )  # fmt: skip
    #: Must be the audience the operator's TokenReview asks for (`rollout_operator.auth`).
    token_audience: str = "llm-rollout"
    token_expiration_seconds: int = 3600

    def base_urls(self) -> dict[str, str]:
        """The env the official SDKs read their base URL from, pointing at the sidecar."""
        local = f"http://127.0.0.1:{self.data_port}"
        return {
            "OPENAI_BASE_URL": f"{local}/v1",
            "ANTHROPIC_BASE_URL": local,
            "GOOGLE_GEMINI_BASE_URL": local,
        }


@dataclass(frozen=True)
class Decision:
    """The webhook's answer: a patch (empty: admit unchanged) and why, for the user."""

    patch: Patch
    reason: str
    warnings: tuple[str, ...] = ()
    #: The LLMRollout the sidecar was injected for (empty: none injected).
    rollout: str = ""


def _escape(key: str) -> str:
    """A JSON Pointer token (RFC 6901): '~' and '/' escaped."""
    return key.replace("~", "~0").replace("/", "~1")


def secret_refs(rollout: Mapping[str, Any]) -> dict[str, list[str]]:
    """Secret name → keys the rollout's providers read, in first-seen order."""
    refs: dict[str, list[str]] = {}
    for provider in (rollout.get("spec") or {}).get("providers") or []:
        for source in [provider.get("apiKey") or {}, *(provider.get("apiKeys") or [])]:
            ref = source.get("secretRef") or {}
            name, key = ref.get("name"), ref.get("key")
            if name and key and key not in refs.setdefault(name, []):
                refs[name].append(key)
    return refs


def _volume_name(secret: str) -> str:
    """A DNS-1123 volume name for a Secret, unique even when the Secret's name is long."""
    name = f"llm-rollout-key-{secret}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(secret.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def is_injected(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    return any(c.get("name") == SIDECAR_NAME for c in containers)


def choose_rollout(
    pod: Mapping[str, Any], rollouts: Sequence[Mapping[str, Any]]
) -> tuple[str | None, Mapping[str, Any] | None, str]:
    """(rollout name, the rollout if known, why): by annotation first, else by selector."""
    meta = pod.get("metadata") or {}
    named = (meta.get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    by_name = {(r.get("metadata") or {}).get("name"): r for r in rollouts}
    if named:
        return named, by_name.get(named), f"named by annotation {ROLLOUT_ANNOTATION}"
    labels = meta.get("labels") or {}
    matching = sorted(
        name
        for name, r in by_name.items()
        if name and selects((r.get("spec") or {}).get("selector"), labels)
    )
    if len(matching) == 1:
        return matching[0], by_name[matching[0]], "selected by the rollout's spec.selector"
    if not matching:
        return None, None, "no LLMRollout in this namespace selects the pod's labels"
    return None, None, f"several LLMRollouts select the pod ({', '.join(matching)})"


def sidecar_container(
    template: SidecarTemplate, namespace: str, rollout: str, secrets: Mapping[str, list[str]]
) -> dict[str, Any]:
    admin = {"port": template.admin_port, "scheme": "HTTP"}
    mounts = [
        {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ] + [
        {"name": _volume_name(s), "mountPath": f"{SECRETS_DIR}/{s}", "readOnly": True}
        for s in secrets
    ]
    args = [
        "--config", STARTUP_CONFIG,
        "--listen", f"127.0.0.1:{template.data_port}",
        "--admin-listen", f"0.0.0.0:{template.admin_port}",
        "--control-url", template.control_url,
        "--rollout", f"{namespace}/{rollout}",
        "--token-file", f"{TOKEN_DIR}/token",
    ]  # fmt: skip
    return {
        "name": SIDECAR_NAME,
        "image": template.image,
        "restartPolicy": "Always",
        "args": args,
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LLM_ROLLOUT_SECRETS_DIR", "value": SECRETS_DIR},
        ],
        "ports": [{"name": ADMIN_PORT_NAME, "containerPort": template.admin_port}],
        # The app's containers start only once this passes: no request finds the port closed.
        "startupProbe": {
            "httpGet": {"path": "/readyz", **admin},
            "periodSeconds": 1,
            "failureThreshold": 30,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", **admin}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", **admin},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": dict(template.resources),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SIDECAR_UID,
            "runAsGroup": SIDECAR_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def _volumes(template: SidecarTemplate, secrets: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    token = {
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": template.token_audience,
                        "expirationSeconds": template.token_expiration_seconds,
                        "path": "token",
                    }
                }
            ]
        },
    }
    tmp = {"name": TMP_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
    keys = [
        {
            "name": _volume_name(secret),
            # optional: a missing Secret must not keep the pod from starting; the sidecar
            # then answers that provider's share from the fallback chain and says why.
            "secret": {
                "secretName": secret,
                "items": [{"key": k, "path": k} for k in keys],
                "optional": True,
                "defaultMode": 0o440,
            },
        }
        for secret, keys in secrets.items()
    ]
    return [token, tmp, *keys]


def _append(spec: Mapping[str, Any], key: str, items: list[dict[str, Any]], front: bool) -> Patch:
    """Ops adding `items` to the list `spec[key]`, creating the list when absent."""
    if not items:
        return []
    if not spec.get(key):
        return [{"op": "add", "path": f"/spec/{key}", "value": items}]
    where = "0" if front else "-"
    ordered = list(reversed(items)) if front else items
    return [{"op": "add", "path": f"/spec/{key}/{where}", "value": item} for item in ordered]


def _map_entries(meta: Mapping[str, Any], key: str, entries: dict[str, str]) -> Patch:
    if not entries:
        return []
    if not meta.get(key):
        return [{"op": "add", "path": f"/metadata/{key}", "value": entries}]
    return [
        {"op": "add", "path": f"/metadata/{key}/{_escape(k)}", "value": v}
        for k, v in entries.items()
    ]


def _app_env(spec: Mapping[str, Any], template: SidecarTemplate) -> tuple[Patch, list[str]]:
    patch: Patch = []
    warnings = []
    for index, container in enumerate(spec.get("containers") or []):
        existing = {e.get("name") for e in container.get("env") or []}
        wanted = [
            {"name": k, "value": v} for k, v in template.base_urls().items() if k not in existing
        ]
        kept = sorted(set(template.base_urls()) & existing)
        if kept:
            warnings.append(
                f"container {container.get('name')!r} sets {', '.join(kept)} itself; "
                "kept, so those SDK calls bypass the llm-rollout sidecar"
            )
        if not container.get("env"):
            if wanted:
                patch.append(
                    {"op": "add", "path": f"/spec/containers/{index}/env", "value": wanted}
                )
        else:
            patch += [
                {"op": "add", "path": f"/spec/containers/{index}/env/-", "value": w} for w in wanted
            ]
    return patch, warnings


def mutate(
    pod: Mapping[str, Any],
    namespace: str,
    rollouts: Sequence[Mapping[str, Any]],
    template: SidecarTemplate,
) -> Decision:
    """The patch that injects the sidecar into `pod`, or none and the reason why not.

    `rollouts` are the LLMRollout objects of the pod's namespace as the API returns them.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if str((meta.get("annotations") or {}).get(INJECT_ANNOTATION, "")).lower() == "false":
        return Decision([], f'opted out by annotation {INJECT_ANNOTATION}: "false"')
    if is_injected(pod):
        return Decision([], f"already has the {SIDECAR_NAME} container")
    name, rollout, why = choose_rollout(pod, rollouts)
    if name is None:
        return Decision(
            [],
            why,
            (f"llm-rollout: no sidecar injected: {why}; name one with the pod annotation "
             f"{ROLLOUT_ANNOTATION}, or opt out with {INJECT_ANNOTATION}: \"false\"",),
        )  # fmt: skip
    warnings: list[str] = []
    if rollout is None:
        warnings.append(
            f"llm-rollout: LLMRollout {namespace}/{name} does not exist yet; the sidecar "
            "serves the mock until it does, and mounts no provider keys (restart the pod "
            "after creating the rollout)"
        )
    secrets = secret_refs(rollout or {})
    sidecar = sidecar_container(template, namespace, name, secrets)
    env_patch, env_warnings = _app_env(spec, template)
    annotations = meta.get("annotations") or {}
    record = {} if ROLLOUT_ANNOTATION in annotations else {ROLLOUT_ANNOTATION: name}
    patch = [
        *_map_entries(meta, "labels", {INJECTED_LABEL: "true"}),
        *_map_entries(meta, "annotations", record),
        *_append(spec, "initContainers", [sidecar], front=True),
        *_append(spec, "volumes", _volumes(template, secrets), front=False),
        *env_patch,
    ]
    warnings += [f"llm-rollout: {w}" for w in env_warnings]
    return Decision(
        patch, f"injected for LLMRollout {namespace}/{name} ({why})", tuple(warnings), name
    )
