"""The webhook brought up as the operator does it, against an emulated API server (kmock).

Two replicas race for the self-signed certificate and end up serving the same one; the
CA lands in the chart's MutatingWebhookConfiguration; then an AdmissionReview sent over
TLS, trusted through that patched `caBundle` as the API server would, injects the pod.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import kmock
import pytest
import yaml

from proxy.config.audit import AuditLog
from rollout_operator.kube import KubeClient, rollout_path
from rollout_operator.webhook import bootstrap, server
from tests.packaging.conftest import ROOT
from tests.packaging.pods import NAMESPACE, pod, rollout

sys.path.insert(0, str(ROOT / "tests" / "operator"))
from k8s_emulator import Emulator, declare

INSTALL = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
WEBHOOKS = bootstrap.WEBHOOKS


def chart_object(kind: str) -> dict[str, Any]:
    (found,) = [d for d in INSTALL if d["kind"] == kind]
    return copy.deepcopy(found)


def chart_settings(cert_dir: Path) -> server.WebhookSettings:
    """WebhookSettings from the env the plain manifests give the operator's container."""
    (container,) = chart_object("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(POD_NAMESPACE="llm-rollout", LLM_ROLLOUT_WEBHOOK_CERT_DIR=str(cert_dir),
               LLM_ROLLOUT_WEBHOOK_LISTEN="127.0.0.1:0")  # fmt: skip
    settings = server.WebhookSettings.from_env(env)
    assert settings is not None
    return settings


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeClient]:
    async with Emulator() as k8s, kmock.Server(k8s) as srv:
        declare(k8s)
        k8s.resources["v1/secrets"] = kmock.ResourceInfo(namespaced=True, kind="Secret")
        k8s.resources["admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"] = (
            kmock.ResourceInfo(namespaced=False, kind="MutatingWebhookConfiguration")
        )
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "k", "cluster": {"server": str(srv.url).rstrip("/")}}],
            "users": [{"name": "u", "user": {"token": "operator-token"}}],
            "contexts": [{"name": "t", "context": {"cluster": "k", "user": "u"}}],
        }))  # fmt: skip
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        client = await KubeClient.connect()
        await client.request("POST", WEBHOOKS, chart_object("MutatingWebhookConfiguration"))
        try:
            yield client
        finally:
            await client.close()


async def test_replicas_share_one_certificate_and_its_ca_reaches_the_configuration(
    api: KubeClient, tmp_path: Path
) -> None:
    settings = chart_settings(tmp_path)
    assert settings.self_signed_secret is not None
    assert settings.service is not None
    assert settings.configuration is not None
    args = (api, settings.namespace, settings.self_signed_secret, settings.service)
    first, second = await asyncio.gather(
        bootstrap.shared_certificate(*args), bootstrap.shared_certificate(*args)
    )
    assert first == second
    assert await bootstrap.shared_certificate(*args) == first  # a restart reuses it
    await bootstrap.patch_ca_bundle(api, settings.configuration, first.ca_pem)
    config = await api.request("GET", f"{WEBHOOKS}/{settings.configuration}")
    hooks = config["webhooks"]
    assert [h["name"] for h in hooks] == ["inject.llm-rollout.io", "audit-commands.llm-rollout.io"]
    for hook in hooks:  # the audit hook is served by the same server: the same CA
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == first.ca_pem
        assert hook["failurePolicy"] == "Ignore"  # the rest of the chart's object untouched


async def test_operator_started_webhook_injects_over_tls_trusted_by_the_ca_bundle(
    api: KubeClient, tmp_path: Path
) -> None:
    marketing = rollout("marketing", {"app": "marketing-api"}, ("llm-keys", "openai"))
    await api.request("POST", rollout_path(NAMESPACE), marketing)
    settings = chart_settings(tmp_path)
    runner = await bootstrap.start(api, settings, AuditLog(None, "operator"))
    try:
        config = await api.request("GET", f"{WEBHOOKS}/{settings.configuration}")
        hook = config["webhooks"][0]
        trusted = ssl.create_default_context(
            cadata=base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
        )
        service = hook["clientConfig"]["service"]
        port = runner.addresses[0][1]
        subject = pod()
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u-1", "namespace": NAMESPACE, "object": subject}}  # fmt: skip
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"https://127.0.0.1:{port}{service['path']}", json=review, ssl=trusted,
                         server_hostname=f"{service['name']}.{service['namespace']}.svc") as r,
        ):  # fmt: skip
            assert r.status == 200
            answer = (await r.json())["response"]
    finally:
        await runner.cleanup()
    injected = jsonpatch.apply_patch(subject, json.loads(base64.b64decode(answer["patch"])))
    sidecar = injected["spec"]["initContainers"][0]
    assert "shop/marketing" in sidecar["args"]
    assert any(m["mountPath"] == "/var/run/secrets/llm-rollout/llm-keys"
               for m in sidecar["volumeMounts"])  # fmt: skip
