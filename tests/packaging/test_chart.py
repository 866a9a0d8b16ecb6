"""The Helm chart: lint, render (defaults and every option on), and validate what it renders."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry

from proxy.config import parse_spec
from proxy.server.runtime import Runtime
from rollout_operator.cli import parse_args
from rollout_operator.hub import Hub
from rollout_operator.metrics import HubCollector
from rollout_operator.webhook.server import WebhookSettings
from tests.packaging.conftest import CHART, ROOT
from tools import dashboard, manifests

ALL_ON = Path(__file__).parent / "values-all-on.yaml"
K8S_VERSION = "1.35.0"
#: Kinds from other projects' CRDs (prometheus-operator, cert-manager): no schema offline.
EXTERNAL_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
}


def run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def render(helm: Path, *args: str) -> list[dict[str, Any]]:
    result = run(helm, "template", "llm-rollout", str(CHART), "--namespace", "llm-rollout",
                 "--kube-version", K8S_VERSION, *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def default(helm: Path) -> list[dict[str, Any]]:
    return render(helm)


@pytest.fixture(scope="module")
def all_on(helm: Path) -> list[dict[str, Any]]:
    return render(helm, "--values", str(ALL_ON))


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(documents, kind)
    return found


@pytest.mark.parametrize("values", [[], ["--values", str(ALL_ON)]], ids=["default", "all-on"])
def test_helm_lint_strict(helm: Path, values: list[str]) -> None:
    result = run(helm, "lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", ["default", "all_on"])
def test_every_rendered_object_is_valid(values: str, request: pytest.FixtureRequest) -> None:
    documents: list[dict[str, Any]] = request.getfixturevalue(values)
    crds = {
        (d["spec"]["group"], d["spec"]["names"]["kind"]): d
        for d in by_kind(documents, "CustomResourceDefinition")
    }
    checked = set()
    for document in documents:
        api, kind = document["apiVersion"], document["kind"]
        group = api.split("/")[0] if "/" in api else ""
        if (group, kind) in crds:  # our own kinds: against the CRD rendered beside them
            (version,) = crds[group, kind]["spec"]["versions"]
            jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(document)
        elif (api, kind) in EXTERNAL_KINDS:
            assert document["spec"], f"{kind} without a spec"
        else:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        checked.add(kind)
    assert {"Deployment", "CustomResourceDefinition", "MutatingWebhookConfiguration"} <= checked


def test_unknown_values_are_rejected_with_the_key_named(helm: Path) -> None:
    for setting, key in (("replicaCount=3", "replicaCount"), ("webhook.failurPolicy=Fail",
                                                               "failurPolicy")):  # fmt: skip
        result = run(helm, "template", str(CHART), "--set", setting)
        assert result.returncode != 0
        assert f"additional properties '{key}' not allowed" in result.stderr


def test_crd_is_kept_on_uninstall_by_default_and_optional(
    helm: Path, default: list[dict[str, Any]]
) -> None:
    crds = by_kind(default, "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == {
        "llmrollouts.llm-rollout.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev",
    }  # fmt: skip
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not by_kind(render(helm, "--set", "crds.install=false"), "CustomResourceDefinition")
    unkept = by_kind(render(helm, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert all("annotations" not in c["metadata"] for c in unkept)


def test_service_monitor_scrapes_the_operator_control_port(all_on: list[dict[str, Any]]) -> None:
    monitor = one(all_on, "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in by_kind(all_on, "Service")
                if wanted.items() <= s["metadata"]["labels"].items()]  # fmt: skip
    (service,) = selected
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_two_replicas_elect_one_active_through_kopf_peering(default: list[dict[str, Any]]) -> None:
    deployment = one(default, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    peering = one(default, "ClusterKopfPeering")
    assert f"--peering={peering['metadata']['name']}" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--namespace")]  # cluster-wide
    assert f"--peering-lifetime={15}" in container["args"]
    # Only the active replica is ready, so the control Service reaches it alone; a PDB
    # would count it as the one healthy pod and refuse ever to evict it (drains hang).
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "control"}
    assert not [d for d in default if d["kind"] == "PodDisruptionBudget"]
    assert container["command"] == ["llm-rollout-operator"]
    assert "--liveness=http://0.0.0.0:8091/healthz" in container["args"]


def rules_of(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for d in documents if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]


@pytest.mark.parametrize("values", ["default", "all_on"])
def test_rbac_is_least_privilege(values: str, request: pytest.FixtureRequest) -> None:
    documents: list[dict[str, Any]] = request.getfixturevalue(values)
    for rule in rules_of(documents):
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["resources"], rule
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= {"create"} or rule.get("resourceNames"), rule
            assert not {"list", "watch"} & set(rule["verbs"]), rule


def test_namespace_scope_watches_only_the_listed_namespaces(all_on: list[dict[str, Any]]) -> None:
    (cluster_role,) = by_kind(all_on, "ClusterRole")
    cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert cluster_resources == {"customresourcedefinitions", "tokenreviews"}
    watch_roles = [r for r in by_kind(all_on, "Role") if r["metadata"]["name"].endswith("-watch")]
    for role in watch_roles:  # the pods rollout_operator.pods lists and watches
        assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]} in role[
            "rules"
        ]
    assert sorted(r["metadata"]["namespace"] for r in watch_roles) == ["search", "shop"]
    assert sorted(p["metadata"]["namespace"] for p in by_kind(all_on, "KopfPeering")) == [
        "search", "shop",
    ]  # fmt: skip
    (container,) = one(all_on, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"--namespace=shop", "--namespace=search"} <= set(container["args"])


def test_webhook_defaults_never_block_pod_creation(default: list[dict[str, Any]]) -> None:
    hook, audit = one(default, "MutatingWebhookConfiguration")["webhooks"]
    # The audit hook only watches commands: it never blocks one, whatever failurePolicy says.
    assert audit["failurePolicy"] == "Ignore"
    assert audit["clientConfig"]["service"]["path"] == "/audit-commands"
    assert audit["rules"] == [{"apiGroups": ["llm-rollout.io"], "apiVersions": ["*"],
                               "operations": ["UPDATE"], "resources": ["llmrollouts"],
                               "scope": "Namespaced"}]  # fmt: skip
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 5
    assert hook["namespaceSelector"] == {"matchLabels": {"llm-rollout.io/injection": "enabled"}}
    assert hook["clientConfig"]["service"]["path"] == "/mutate-pods"
    # The operator's own pods are never sent to the webhook, so an outage cannot block them.
    labels = one(default, "Deployment")["spec"]["template"]["metadata"]["labels"]
    (excluded,) = hook["objectSelector"]["matchExpressions"]
    assert excluded["operator"] == "NotIn"
    assert labels[excluded["key"]] in excluded["values"]


def test_cert_manager_mode_injects_the_ca_and_mounts_the_certificate(
    all_on: list[dict[str, Any]],
) -> None:
    certificate = one(all_on, "Certificate")
    hook_config = one(all_on, "MutatingWebhookConfiguration")
    namespace, name = hook_config["metadata"]["annotations"][
        "cert-manager.io/inject-ca-from"
    ].split("/")
    assert (namespace, name) == (
        certificate["metadata"]["namespace"],
        certificate["metadata"]["name"],
    )
    pod = one(all_on, "Deployment")["spec"]["template"]["spec"]
    (tls,) = [v for v in pod["volumes"] if v["name"] == "webhook-tls"]
    assert tls["secret"]["secretName"] == certificate["spec"]["secretName"]
    service = hook_config["webhooks"][0]["clientConfig"]["service"]
    assert f"{service['name']}.{service['namespace']}.svc" in certificate["spec"]["dnsNames"]


@pytest.mark.parametrize("values", ["default", "all_on"])
def test_operator_environment_configures_the_webhook(
    values: str, request: pytest.FixtureRequest
) -> None:
    """The chart's env and WebhookSettings.from_env agree (the chart ↔ operator contract)."""
    documents: list[dict[str, Any]] = request.getfixturevalue(values)
    (container,) = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["POD_NAMESPACE"] = "llm-rollout"
    settings = WebhookSettings.from_env(env)
    assert settings is not None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings.port == ports["webhook"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(settings.cert_dir) == mounts["webhook-tls"]
    service = next(
        s for s in by_kind(documents, "Service") if s["metadata"]["name"].endswith("-control")
    )
    assert settings.template.control_url == (
        f"http://{service['metadata']['name']}.llm-rollout.svc:{service['spec']['ports'][0]['port']}"
    )


def test_alerts_and_dashboard_use_the_metric_names_the_sidecar_exports(
    all_on: list[dict[str, Any]],
) -> None:
    names = yaml.safe_load((CHART / "files" / "metrics.yaml").read_text())
    listed = {n for section in names.values() for n in section.values()}
    operator = CollectorRegistry()
    operator.register(HubCollector(Hub()))
    exported = {
        f.name + ("_total" if f.type == "counter" else "")
        for registry in (
            Runtime(parse_spec({}), "test", max_body_bytes=1).metrics.registry,
            operator,
        )
        for f in registry.collect()
    }
    assert listed <= exported, listed - exported
    rule_text = json.dumps(one(all_on, "PrometheusRule")["spec"])
    dashboard_text = one(all_on, "ConfigMap")["data"]["llm-rollout.json"]
    for text in (rule_text, dashboard_text):
        used = set(
            re.findall(r"\b((?:llm_rollout|gen_ai)_[a-z_]+?)(?:_bucket|_sum|_count)?\b", text)
        )
        assert used <= listed, used - listed
    alerts = {
        r["alert"] for g in one(all_on, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    }
    assert alerts == {
        "LLMRolloutProviderBreakerOpen", "LLMRolloutBudgetWarning", "LLMRolloutBudgetExhausted",
        "LLMRolloutAborted", "LLMRolloutRealArmSlow", "LLMRolloutKeyRejected",
        "LLMRolloutKeyFileProblem", "LLMRolloutAuditSilent", "LLMRolloutControlAuthFailures",
        "LLMRolloutQualityDrop",
    }  # fmt: skip


def test_dashboard_file_matches_its_generator() -> None:
    committed = (CHART / "files" / "dashboard.json").read_text()
    assert committed == dashboard.render(), "run `make manifests` and commit the result"


def test_committed_manifests_match_a_fresh_render(helm: Path) -> None:
    for name, text in manifests.render(helm).items():
        committed = (ROOT / "manifests" / name).read_text()
        assert committed == text, f"manifests/{name} is stale: run `make manifests` and commit"


@pytest.mark.parametrize("values", ["default", "all_on"])
def test_operator_command_line_is_one_the_operator_accepts(
    values: str, request: pytest.FixtureRequest
) -> None:
    documents: list[dict[str, Any]] = request.getfixturevalue(values)
    (container,) = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["llm-rollout-operator"]
    args = parse_args(container["args"])
    assert args.peering
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.control_listen == f"0.0.0.0:{ports['control']}"
    assert args.liveness.endswith(f":{ports['health']}/healthz")
