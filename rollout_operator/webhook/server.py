"""The admission endpoints: AdmissionReview v1 in, AdmissionReview v1 out. Thin.

`/mutate-pods`: everything it decides comes from `mutate.mutate`; this module only
reads the review, asks for the namespace's LLMRollouts, and encodes the JSONPatch.
When the rollouts cannot be listed it answers 500, so the API server applies the
webhook's `failurePolicy` (Ignore: the pod starts without a sidecar; Fail: it is
refused) rather than this code guessing which of the two the cluster's owner wanted.
Each injection is an audit event (``webhook.injected``) with the user the API server
names as the pod's creator.

`/audit-commands`: sees each update of an LLMRollout and writes the audit event
``rollout.command.requested`` when its command annotation (what `kubectl llmrollout`
and the dashboard write) changes, with the requesting user *as the API server
authenticated it*: the object itself does not say who wrote an annotation, and
what a client writes about itself could be forged. It always allows; the operator's
``rollout.command`` event (same command id) says what came of it.

The operator starts it with `start(settings, list_rollouts)` next to the control
channel; both replicas serve it (it holds no state).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config.audit import AuditLog
from rollout_operator.reconcile import COMMAND_ANNOTATION
from rollout_operator.webhook.mutate import SidecarTemplate, mutate
from rollout_operator.webhook.tls import CERT_KEY, KEY_KEY

log = logging.getLogger("llm_rollout.webhook")

#: Lists the LLMRollout objects of a namespace (as the API returns them).
RolloutLister = Callable[[str], Awaitable[list[dict[str, Any]]]]
PATH = "/mutate-pods"
COMMANDS_PATH = "/audit-commands"

TEMPLATE = web.AppKey("template", SidecarTemplate)
LISTER: web.AppKey[RolloutLister] = web.AppKey("lister")
AUDIT = web.AppKey("audit", AuditLog)


@dataclass(frozen=True)
class WebhookSettings:
    """Where to listen, the certificate directory, and the sidecar to inject."""

    host: str
    port: int
    cert_dir: Path
    template: SidecarTemplate
    #: Set when the operator makes its own certificate (no cert-manager).
    self_signed_secret: str | None = None
    configuration: str | None = None
    service: str | None = None
    namespace: str = "default"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings | None:
        """From the variables the Helm chart sets; None when the webhook is disabled."""
        env = os.environ if env is None else env
        listen = env.get("LLM_ROLLOUT_WEBHOOK_LISTEN")
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        data_port, admin_port = (int(p) for p in env["LLM_ROLLOUT_SIDECAR_PORTS"].split(","))
        template = SidecarTemplate(
            image=env["LLM_ROLLOUT_SIDECAR_IMAGE"],
            control_url=env["LLM_ROLLOUT_CONTROL_URL"],
            data_port=data_port,
            admin_port=admin_port,
            resources=json.loads(env["LLM_ROLLOUT_SIDECAR_RESOURCES"]),
            token_expiration_seconds=int(env.get("LLM_ROLLOUT_TOKEN_EXPIRATION_SECONDS", "3600")),
        )
        return cls(
            host=host or "0.0.0.0",
            port=int(port),
            cert_dir=Path(env["LLM_ROLLOUT_WEBHOOK_CERT_DIR"]),
            template=template,
            self_signed_secret=env.get("LLM_ROLLOUT_WEBHOOK_SELF_SIGNED_SECRET"),
            configuration=env.get("LLM_ROLLOUT_WEBHOOK_CONFIGURATION"),
            service=env.get("LLM_ROLLOUT_WEBHOOK_SERVICE"),
            namespace=env.get("POD_NAMESPACE", "default"),
        )


def _response(uid: str, patch: list[dict[str, Any]], warnings: tuple[str, ...]) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


async def review(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        req = body["request"]
        uid, pod, namespace = req["uid"], req["object"], req["namespace"]
    except (ValueError, KeyError, TypeError):
        return web.json_response(
            {"error": "expected an admission.k8s.io/v1 AdmissionReview with request.uid, "
             "request.object (a Pod) and request.namespace"},
            status=400,
        )  # fmt: skip
    try:
        rollouts = await request.app[LISTER](namespace)
    except Exception as error:
        log.warning("cannot list LLMRollouts in %s (%s): failurePolicy applies", namespace, error)
        return web.json_response({"error": f"cannot list LLMRollouts in {namespace}"}, status=500)
    decision = mutate(pod, namespace, rollouts, request.app[TEMPLATE])
    pod_name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get(
        "generateName", "?"
    )
    log.info("pod %s/%s: %s", namespace, pod_name, decision.reason)
    if decision.patch:
        request.app[AUDIT].event(
            "webhook.injected", namespace=namespace, pod=pod_name, rollout=decision.rollout,
            user=_user(req),
        )  # fmt: skip
    return web.json_response(_response(uid, decision.patch, decision.warnings))


def _user(req: Mapping[str, Any]) -> str:
    """Who the API server says made the request (``system:serviceaccount:ns:name`` for a pod's)."""
    return str((req.get("userInfo") or {}).get("username") or "?")


def _command(obj: Any) -> str:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(COMMAND_ANNOTATION) or "")


async def review_command(request: web.Request) -> web.Response:
    """Audit a new command on an LLMRollout with its requester; never refuses anything."""
    try:
        body = await request.json()
        req = body["request"]
        uid, obj = req["uid"], req["object"]
    except (ValueError, KeyError, TypeError):
        return web.json_response(
            {"error": "expected an admission.k8s.io/v1 AdmissionReview with request.uid and "
             "request.object (an LLMRollout)"},
            status=400,
        )  # fmt: skip
    command = _command(obj)
    if command and command != _command(req.get("oldObject")):
        command_id, _, verb = command.partition(" ")
        request.app[AUDIT].event(
            "rollout.command.requested", namespace=req.get("namespace", ""),
            rollout=req.get("name") or (obj.get("metadata") or {}).get("name", ""),
            command_id=command_id, command=verb, user=_user(req),
            groups=list((req.get("userInfo") or {}).get("groups") or []),
        )  # fmt: skip
    return web.json_response(_response(uid, [], ()))


def build_app(
    template: SidecarTemplate, list_rollouts: RolloutLister, audit: AuditLog
) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[TEMPLATE] = template
    app[LISTER] = list_rollouts
    app[AUDIT] = audit
    app.router.add_post(PATH, review)
    app.router.add_post(COMMANDS_PATH, review_command)
    return app


def ssl_context(cert_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_dir / CERT_KEY, cert_dir / KEY_KEY)
    return context


def _stamp(cert_dir: Path) -> tuple[int, ...]:
    with contextlib.suppress(OSError):
        return tuple((cert_dir / n).stat().st_mtime_ns for n in (CERT_KEY, KEY_KEY))
    return ()


async def reload_certificates(context: ssl.SSLContext, cert_dir: Path, interval: float) -> None:
    """Load a renewed certificate into the live context: new handshakes use it.

    cert-manager renews the Secret before expiry and the kubelet swaps the mounted files;
    without this, a long-running operator would serve the old certificate until restarted.
    A half-written or mismatched pair is refused and the old one kept until the next look.
    """
    seen = _stamp(cert_dir)
    while True:
        await asyncio.sleep(interval)
        current = _stamp(cert_dir)
        if current == seen:
            continue
        try:
            context.load_cert_chain(cert_dir / CERT_KEY, cert_dir / KEY_KEY)
        except (OSError, ssl.SSLError) as error:
            log.warning(
                "webhook certificate in %s not reloaded (%s); keeping the old", cert_dir, error
            )
            continue
        seen = current
        log.info("webhook certificate reloaded from %s", cert_dir)


async def start(
    settings: WebhookSettings,
    list_rollouts: RolloutLister,
    audit: AuditLog,
    *,
    reload_interval: float = 60.0,
) -> web.AppRunner:
    """Serve the webhook over TLS from `settings.cert_dir`; the caller cleans up the runner."""
    app = build_app(settings.template, list_rollouts, audit)
    context = ssl_context(settings.cert_dir)

    async def reloading(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(reload_certificates(context, settings.cert_dir, reload_interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(reloading)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
    await site.start()
    log.info("injection webhook listening on %s:%d%s", settings.host, settings.port, PATH)
    return runner
