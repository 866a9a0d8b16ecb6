"""The admission endpoint over real HTTPS on loopback, as the API server calls it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest

from proxy.config.audit import AuditLog
from rollout_operator.reconcile import COMMAND_ANNOTATION
from rollout_operator.webhook import bootstrap, server, tls
from rollout_operator.webhook.mutate import SIDECAR_NAME, SidecarTemplate
from tests.packaging.pods import NAMESPACE, pod, rollout

TEMPLATE = SidecarTemplate(image="llm-rollout:test", control_url="http://control:8090")
SERVICE, OPERATOR_NS = "llm-rollout-webhook", "llm-rollout"
ROLLOUTS = {NAMESPACE: [rollout("marketing", {"app": "marketing-api"}, ("llm-keys", "openai"))]}


async def list_rollouts(namespace: str) -> list[dict[str, Any]]:
    if namespace == "down":
        raise ConnectionError("API server unreachable")
    return ROLLOUTS.get(namespace, [])


def review(subject: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": subject,
        },
    }


@pytest.fixture
def audit() -> io.StringIO:
    return io.StringIO()


def audited(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
async def webhook(tmp_path: Path, audit: io.StringIO) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    bundle = tls.generate(SERVICE, OPERATOR_NS)
    bootstrap.write_files(bundle, tmp_path)
    settings = server.WebhookSettings(host="127.0.0.1", port=0, cert_dir=tmp_path,
                                      template=TEMPLATE)  # fmt: skip
    runner = await server.start(settings, list_rollouts, AuditLog(audit, "operator"))
    port = runner.addresses[0][1]
    client_ssl = ssl.create_default_context(cadata=bundle.ca_pem.decode())  # the caBundle
    yield f"https://127.0.0.1:{port}{server.PATH}", client_ssl
    await runner.cleanup()


async def post(target: tuple[str, ssl.SSLContext], body: Any) -> tuple[int, dict[str, Any]]:
    url, context = target
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json=body, ssl=context, server_hostname=f"{SERVICE}.{OPERATOR_NS}.svc"
        ) as response,  # fmt: skip
    ):
        return response.status, await response.json()


async def test_review_returns_a_base64_jsonpatch_the_api_server_can_apply(
    webhook: tuple[str, ssl.SSLContext],
) -> None:
    subject = pod()
    status, body = await post(webhook, review(subject))
    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    injected = jsonpatch.apply_patch(subject, patch)
    assert injected["spec"]["initContainers"][0]["name"] == SIDECAR_NAME


async def test_an_injection_is_audited_with_the_user_the_api_server_names(
    webhook: tuple[str, ssl.SSLContext], audit: io.StringIO
) -> None:
    creator = "system:serviceaccount:kube-system:replicaset-controller"
    request = review(pod())
    request["request"]["userInfo"] = {"username": creator, "groups": ["system:serviceaccounts"]}
    await post(webhook, request)
    (event,) = audited(audit)
    assert event["event"] == "webhook.injected"
    assert event["component"] == "operator"
    assert event["audit"] is True
    assert (event["namespace"], event["rollout"], event["user"]) == (NAMESPACE, "marketing",
                                                                     creator)  # fmt: skip
    assert event["pod"] == "marketing-api-7d9f8b6c5-", "a Deployment's pod: its generateName"


async def test_opted_out_pod_is_admitted_unchanged(
    webhook: tuple[str, ssl.SSLContext], audit: io.StringIO
) -> None:
    status, body = await post(webhook, review(pod(annotations={"llm-rollout.io/inject": "false"})))
    assert status == 200
    assert body["response"]["allowed"] is True
    assert "patch" not in body["response"]
    assert audited(audit) == [], "nothing injected, nothing audited"


def command_review(old: str, new: str) -> dict[str, Any]:
    """An LLMRollout UPDATE as the API server sends it to the audit hook."""

    def obj(command: str) -> dict[str, Any]:
        subject = rollout("marketing", {"app": "marketing-api"})
        if command:
            subject["metadata"]["annotations"] = {COMMAND_ANNOTATION: command}
        return subject

    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee", "namespace": NAMESPACE, "name": "marketing", "operation": "UPDATE",
            "kind": {"group": "llm-rollout.io", "version": "v1alpha1", "kind": "LLMRollout"},
            "userInfo": {"username": "alice@example.com",
                         "groups": ["platform-oncall", "system:authenticated"]},
            "object": obj(new), "oldObject": obj(old),
        },
    }  # fmt: skip


async def test_a_command_is_audited_with_its_requester_and_never_refused(
    webhook: tuple[str, ssl.SSLContext], audit: io.StringIO
) -> None:
    commands = (webhook[0].replace(server.PATH, server.COMMANDS_PATH), webhook[1])
    status, body = await post(commands, command_review("17 pause", "18 abort"))
    assert status == 200
    assert body["response"] == {"uid": "c0ffee", "allowed": True}
    # Other updates (status, kopf's annotations, the same command again) are not commands.
    for old, new in (("18 abort", "18 abort"), ("", "")):
        assert (await post(commands, command_review(old, new)))[1]["response"]["allowed"]
    (event,) = audited(audit)
    assert event["event"] == "rollout.command.requested"
    assert (event["namespace"], event["rollout"], event["command_id"], event["command"]) == (
        NAMESPACE, "marketing", "18", "abort",
    )  # fmt: skip
    assert event["user"] == "alice@example.com"
    assert event["groups"] == ["platform-oncall", "system:authenticated"]
    status, body = await post(commands, {"kind": "LLMRollout"})
    assert status == 400
    assert "AdmissionReview" in body["error"]


async def test_unselected_pod_is_admitted_with_a_warning_for_kubectl(
    webhook: tuple[str, ssl.SSLContext],
) -> None:
    _, body = await post(webhook, review(pod(labels={"app": "billing"})))
    assert "patch" not in body["response"]
    assert "no LLMRollout" in body["response"]["warnings"][0]


async def test_rollouts_unlistable_answers_500_so_failure_policy_decides(
    webhook: tuple[str, ssl.SSLContext],
) -> None:
    status, body = await post(webhook, review(pod(), namespace="down"))
    assert status == 500
    assert "down" in body["error"]


async def test_not_an_admission_review_is_a_400_that_says_what_is_expected(
    webhook: tuple[str, ssl.SSLContext],
) -> None:
    status, body = await post(webhook, {"kind": "Pod"})
    assert status == 400
    assert "AdmissionReview" in body["error"]


def test_self_signed_bundle_is_valid_for_the_service_and_not_for_another() -> None:
    bundle = tls.generate(SERVICE, OPERATOR_NS)
    assert tls.valid_for(bundle, SERVICE, OPERATOR_NS)
    assert not tls.valid_for(bundle, "other", OPERATOR_NS)
    broken = tls.CertBundle(bundle.ca_pem, b"not a certificate", bundle.key_pem)
    assert not tls.valid_for(broken, SERVICE, OPERATOR_NS)


def test_settings_from_the_chart_environment() -> None:
    env = {
        "LLM_ROLLOUT_WEBHOOK_LISTEN": "0.0.0.0:9443",
        "LLM_ROLLOUT_WEBHOOK_CERT_DIR": "/var/run/llm-rollout/webhook-tls",
        "LLM_ROLLOUT_SIDECAR_IMAGE": "ghcr.io/llm-rollout/llm-rollout:0.1.0",
        "LLM_ROLLOUT_CONTROL_URL": "http://llm-rollout-control.llm-rollout.svc:8090",
        "LLM_ROLLOUT_SIDECAR_PORTS": "8100,8101",
        "LLM_ROLLOUT_SIDECAR_RESOURCES": '{"limits": {"memory": "128Mi"}}',
        "LLM_ROLLOUT_WEBHOOK_SELF_SIGNED_SECRET": "llm-rollout-webhook-tls",
        "POD_NAMESPACE": "llm-rollout",
    }
    settings = server.WebhookSettings.from_env(env)
    assert settings is not None
    assert (settings.host, settings.port) == ("0.0.0.0", 9443)
    assert settings.template.resources == {"limits": {"memory": "128Mi"}}
    assert settings.self_signed_secret == "llm-rollout-webhook-tls"
    assert server.WebhookSettings.from_env({}) is None  # webhook disabled in the chart


async def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    """cert-manager renews the Secret; the kubelet swaps the files; new handshakes use it."""
    first, renewed = tls.generate(SERVICE, OPERATOR_NS), tls.generate(SERVICE, OPERATOR_NS)
    bootstrap.write_files(first, tmp_path)
    settings = server.WebhookSettings(host="127.0.0.1", port=0, cert_dir=tmp_path,
                                      template=TEMPLATE)  # fmt: skip
    runner = await server.start(
        settings, list_rollouts, AuditLog(None, "operator"), reload_interval=0.05
    )
    url = f"https://127.0.0.1:{runner.addresses[0][1]}{server.PATH}"
    trusts_renewed = ssl.create_default_context(cadata=renewed.ca_pem.decode())
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await post((url, trusts_renewed), review(pod()))
        bootstrap.write_files(renewed, tmp_path)
        status = 0
        for _ in range(100):  # generous: the reload looks every 50 ms
            await asyncio.sleep(0.05)
            try:
                status, _ = await post((url, trusts_renewed), review(pod()))
                break
            except aiohttp.ClientConnectorCertificateError:
                continue
        assert status == 200
    finally:
        await runner.cleanup()
