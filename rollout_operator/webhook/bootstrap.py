"""Bringing the webhook up inside the operator: its certificate, its CA bundle, its server.

With cert-manager, the certificate is a mounted Secret and cert-manager's CA injector
fills the webhook configuration's `caBundle`; nothing to do here but serve. Without
it, the operator makes a CA and a serving certificate once, stores them in one Secret
(get-or-create, so two replicas starting together end up with the same pair: the
loser of the create race reads the winner's), writes them where the TLS server reads
them, and patches the CA into the `MutatingWebhookConfiguration`.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config.audit import AuditLog
from rollout_operator.kube import KubeClient, KubeError, rollout_path
from rollout_operator.webhook import server, tls

log = logging.getLogger("llm_rollout.webhook")
WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def _secret_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{base}/{name}" if name else base


def _bundle_of(secret: dict[str, Any]) -> tls.CertBundle:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    return tls.CertBundle(
        data.get(tls.CA_KEY, b""), data.get(tls.CERT_KEY, b""), data.get(tls.KEY_KEY, b"")
    )


def _secret_body(name: str, bundle: tls.CertBundle, version: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "llm-rollout"}}
    if version:
        meta["resourceVersion"] = version  # an update loses to a concurrent one, not wins
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {k: base64.b64encode(v).decode() for k, v in bundle.as_secret_data().items()},
    }


async def shared_certificate(
    client: KubeClient, namespace: str, secret: str, service: str
) -> tls.CertBundle:
    """The certificate every replica serves: the stored one while valid, else a new one."""
    path = _secret_path(namespace, secret)
    try:
        stored = await client.request("GET", path)
    except KubeError as error:
        if error.status != 404:
            raise
        stored = None
    if stored is not None:
        bundle = _bundle_of(stored)
        if tls.valid_for(bundle, service, namespace):
            return bundle
    fresh = tls.generate(service, namespace)
    try:
        if stored is None:
            await client.request("POST", _secret_path(namespace), _secret_body(secret, fresh, None))
        else:
            version = stored["metadata"].get("resourceVersion")
            await client.request("PUT", path, _secret_body(secret, fresh, version))
    except KubeError as error:
        if error.status != 409:
            raise
        log.info("another replica stored the webhook certificate first; using it")
        return _bundle_of(await client.request("GET", path))
    log.info("stored a new self-signed webhook certificate in Secret %s/%s", namespace, secret)
    return fresh


async def patch_ca_bundle(client: KubeClient, configuration: str, ca_pem: bytes) -> None:
    """Point every webhook of the configuration at this CA (a no-op when it already is)."""
    path = f"{WEBHOOKS}/{configuration}"
    current = await client.request("GET", path)
    ca = base64.b64encode(ca_pem).decode()
    ops = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca}
        for i, hook in enumerate(current.get("webhooks") or [])
        if (hook.get("clientConfig") or {}).get("caBundle") != ca
    ]
    if ops:
        await client.request("PATCH", path, ops, content_type="application/json-patch+json")
        log.info("patched caBundle of MutatingWebhookConfiguration %s", configuration)


def write_files(bundle: tls.CertBundle, cert_dir: Path) -> None:
    for name, data in bundle.as_secret_data().items():
        (cert_dir / name).write_bytes(data)


async def start(
    client: KubeClient, settings: server.WebhookSettings, audit: AuditLog
) -> web.AppRunner:
    """Certificates ready (self-signed mode), then the webhook served over TLS."""
    if settings.self_signed_secret:
        if not (settings.service and settings.configuration):
            raise ValueError(
                "self-signed webhook needs LLM_ROLLOUT_WEBHOOK_SERVICE and "
                "LLM_ROLLOUT_WEBHOOK_CONFIGURATION (set by the Helm chart)"
            )
        bundle = await shared_certificate(
            client, settings.namespace, settings.self_signed_secret, settings.service
        )
        write_files(bundle, settings.cert_dir)
        await patch_ca_bundle(client, settings.configuration, bundle.ca_pem)

    async def list_rollouts(namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await client.request("GET", rollout_path(namespace)))[
            "items"
        ]
        return items

    return await server.start(settings, list_rollouts, audit)
