"""Sidecar injection on real pod specs: the patch applied as the API server would apply it."""

from __future__ import annotations

import re
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest

from proxy.cli import parse_args
from rollout_operator.auth import AUDIENCE
from rollout_operator.auth import selects as auth_selects
from rollout_operator.webhook.mutate import (
    SIDECAR_NAME,
    STARTUP_CONFIG,
    SidecarTemplate,
    mutate,
    secret_refs,
)
from rollout_operator.webhook.mutate import selects as mutate_selects
from tests.packaging.pods import BARE_POD, MARKETING_POD, NAMESPACE, pod, rollout

TEMPLATE = SidecarTemplate(
    image="ghcr.io/llm-rollout/llm-rollout:0.1.0",
    control_url="http://llm-rollout-control.llm-rollout.svc:8090",
)
MARKETING = rollout("marketing", {"app": "marketing-api"}, ("llm-keys", "openai"),
                    ("llm-keys", "anthropic"), ("gemini-key", "token"))  # fmt: skip
OTHER = rollout("search", {"app": "search-api"}, ("search-keys", "openai"))
BASE_URLS = {
    "OPENAI_BASE_URL": "http://127.0.0.1:8100/v1",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:8100",
    "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:8100",
}
K8S_VERSION = "1.35.0"


def inject(subject: dict[str, Any], rollouts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    decision = mutate(subject, NAMESPACE, [MARKETING, OTHER] if rollouts is None else rollouts,
                      TEMPLATE)  # fmt: skip
    result: dict[str, Any] = jsonpatch.apply_patch(subject, decision.patch)
    return result


def sidecar_of(subject: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in subject["spec"]["initContainers"] if c["name"] == SIDECAR_NAME]
    return found


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_injects_a_native_sidecar_first_with_probes_and_hardening() -> None:
    injected = inject(pod())
    init = injected["spec"]["initContainers"]
    assert [c["name"] for c in init] == [SIDECAR_NAME, "migrate"]  # migrations may call LLMs
    sidecar = init[0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == TEMPLATE.image
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):  # fmt: skip
        assert sidecar[probe]["httpGet"] == {"path": path, "port": 8101, "scheme": "HTTP"}
    security = sidecar["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert sidecar["resources"]["limits"]["memory"] == "128Mi"
    args = sidecar["args"]
    assert args[args.index("--rollout") + 1] == "shop/marketing"
    assert args[args.index("--listen") + 1] == "127.0.0.1:8100"  # loopback only
    assert args[args.index("--control-url") + 1] == TEMPLATE.control_url
    assert injected["metadata"]["labels"]["llm-rollout.io/injected"] == "true"
    assert injected["metadata"]["annotations"]["llm-rollout.io/rollout"] == "marketing"


def test_app_containers_get_base_urls_and_keep_their_own_env() -> None:
    injected = inject(pod())
    api, worker = injected["spec"]["containers"]
    assert env_of(api) == {"LOG_LEVEL": "info", **BASE_URLS}
    assert env_of(worker) == BASE_URLS
    assert "env" not in injected["spec"]["initContainers"][1]  # migrate: not an app container


def test_keys_are_mounted_into_the_sidecar_only_at_the_keys_convention_path() -> None:
    injected = inject(pod())
    sidecar = sidecar_of(injected)
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    key_mounts = {
        m["mountPath"]: volumes[m["name"]]["secret"]
        for m in sidecar["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }
    # proxy.server.keys reads <LLM_ROLLOUT_SECRETS_DIR>/<secret>/<key>
    assert env_of(sidecar)["LLM_ROLLOUT_SECRETS_DIR"] == "/var/run/secrets/llm-rollout"
    files = {
        f"{path}/{item['path']}" for path, secret in key_mounts.items() for item in secret["items"]
    }
    assert files == {
        "/var/run/secrets/llm-rollout/llm-keys/openai",
        "/var/run/secrets/llm-rollout/llm-keys/anthropic",
        "/var/run/secrets/llm-rollout/gemini-key/token",
    }
    secret_volumes = {n for n, v in volumes.items() if "secret" in v}
    for container in injected["spec"]["containers"] + injected["spec"]["initContainers"][1:]:
        mounted = {m["name"] for m in container.get("volumeMounts", [])}
        assert not mounted & secret_volumes, container["name"]
    assert "cache" in volumes  # the pod's own volumes stay


def test_control_channel_token_is_a_projected_token_with_the_audience() -> None:
    injected = inject(pod())
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    sidecar = sidecar_of(injected)
    (mount,) = [m for m in sidecar["volumeMounts"] if m["mountPath"].endswith("-token")]
    (source,) = volumes[mount["name"]]["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == AUDIENCE  # what the operator reviews
    args = sidecar["args"]
    assert args[args.index("--token-file") + 1] == f"{mount['mountPath']}/token"


def test_opt_out_annotation_is_honoured() -> None:
    subject = pod(annotations={"llm-rollout.io/inject": "false"})
    decision = mutate(subject, NAMESPACE, [MARKETING], TEMPLATE)
    assert decision.patch == []
    assert "opted out" in decision.reason


def test_never_injects_twice() -> None:
    once = inject(pod())
    decision = mutate(once, NAMESPACE, [MARKETING, OTHER], TEMPLATE)
    assert decision.patch == []
    assert "already" in decision.reason


def test_annotation_names_the_rollout_over_selectors() -> None:
    subject = pod(annotations={"llm-rollout.io/rollout": "search"})
    sidecar = sidecar_of(inject(subject))
    assert "shop/search" in sidecar["args"]
    assert any(m["mountPath"].endswith("/search-keys") for m in sidecar["volumeMounts"])


def test_pod_no_rollout_selects_is_left_alone_with_a_warning() -> None:
    subject = pod(labels={"app": "billing"})
    decision = mutate(subject, NAMESPACE, [MARKETING, OTHER], TEMPLATE)
    assert decision.patch == []
    assert "llm-rollout.io/rollout" in decision.warnings[0]


def test_two_rollouts_selecting_one_pod_is_ambiguous_and_named() -> None:
    twin = rollout("marketing-v2", {"app": "marketing-api"})
    decision = mutate(pod(), NAMESPACE, [MARKETING, twin], TEMPLATE)
    assert decision.patch == []
    assert "marketing, marketing-v2" in decision.reason


def test_app_set_base_url_is_kept_and_warned_about() -> None:
    subject = pod()
    subject["spec"]["containers"][0]["env"].append(
        {"name": "OPENAI_BASE_URL", "value": "https://proxy.internal/v1"}
    )
    decision = mutate(subject, NAMESPACE, [MARKETING], TEMPLATE)
    api = jsonpatch.apply_patch(subject, decision.patch)["spec"]["containers"][0]
    assert env_of(api)["OPENAI_BASE_URL"] == "https://proxy.internal/v1"
    assert any("OPENAI_BASE_URL" in w and "bypass" in w for w in decision.warnings)


def test_bare_pod_gets_every_list_created() -> None:
    injected = inject(BARE_POD)
    assert env_of(injected["spec"]["containers"][0]) == BASE_URLS
    assert injected["metadata"]["labels"] == {"llm-rollout.io/injected": "true"}
    assert [c["name"] for c in injected["spec"]["initContainers"]] == [SIDECAR_NAME]


def test_rollout_not_created_yet_still_injects_without_keys_and_says_so() -> None:
    decision = mutate(BARE_POD, NAMESPACE, [], TEMPLATE)
    injected = jsonpatch.apply_patch(BARE_POD, decision.patch)
    assert "shop/marketing" in sidecar_of(injected)["args"]
    assert not any("secret" in v for v in injected["spec"]["volumes"])
    assert "does not exist yet" in decision.warnings[0]


def test_long_secret_names_make_valid_distinct_volume_names() -> None:
    long_a, long_b = "a" * 60 + "-one", "a" * 60 + "-two"
    subject = rollout("marketing", {"app": "marketing-api"}, (long_a, "k"), (long_b, "k"))
    names = [v["name"] for v in inject(pod(), [subject])["spec"]["volumes"]]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n) for n in names), names


@pytest.mark.parametrize("subject", [MARKETING_POD, BARE_POD], ids=["deployment-pod", "bare-pod"])
def test_injected_pod_is_a_valid_kubernetes_pod(subject: dict[str, Any]) -> None:
    injected = inject(subject)
    kubernetes_validate.validate(injected, K8S_VERSION, strict=True)


def test_injected_command_line_is_one_the_sidecar_accepts() -> None:
    args = parse_args(sidecar_of(inject(pod()))["args"])
    assert args.rollout == "shop/marketing"
    assert str(args.config) == STARTUP_CONFIG  # baked into the image (see the Dockerfile)
    assert (args.listen.host, args.listen.port) == ("127.0.0.1", 8100)


def test_webhook_and_control_channel_agree_on_which_pods_a_rollout_selects() -> None:
    """One implementation: a pod never gets a sidecar the operator then refuses."""
    assert mutate_selects is auth_selects
    web, search, bare = {"app": "marketing-api", "tier": "web"}, {"app": "search-api"}, {}
    expressions = [
        ({"key": "app", "operator": "In", "values": ["marketing-api", "x"]}, [web]),
        ({"key": "app", "operator": "NotIn", "values": ["marketing-api"]}, [search, bare]),
        ({"key": "tier", "operator": "Exists"}, [web]),
        ({"key": "tier", "operator": "DoesNotExist"}, [search, bare]),
    ]
    for expression, picked in expressions:
        selector = {"matchExpressions": [expression]}
        assert [p for p in (web, search, bare) if auth_selects(selector, p)] == picked, expression
    both = {"matchLabels": {"app": "marketing-api"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}  # fmt: skip
    assert not auth_selects(both, web), "matchLabels AND matchExpressions"
    assert [auth_selects(None, p) for p in (web, search, bare)] == [False] * 3, "none: no pod"
    assert [auth_selects({}, p) for p in (web, search, bare)] == [True] * 3, "{}: every pod"
    assert not auth_selects({"matchExpressions": [{"key": "a", "operator": "In"}]}, web)


def test_every_key_of_a_pool_is_mounted() -> None:
    pooled = {"spec": {"providers": [
        {"name": "openai-primary", "apiKeys": [{"secretRef": {"name": "llm-keys", "key": "old"}},
                                              {"secretRef": {"name": "llm-keys", "key": "new"}}]},
        {"name": "claude", "apiKey": {"secretRef": {"name": "claude-key", "key": "token"}}},
    ]}}  # fmt: skip
    assert secret_refs(pooled) == {"llm-keys": ["old", "new"], "claude-key": ["token"]}
