"""Real-looking pod specs and rollouts for the injection tests (as the API server sends them)."""

from __future__ import annotations

import copy
from typing import Any

NAMESPACE = "shop"


def rollout(name: str, labels: dict[str, str], *secrets: tuple[str, str]) -> dict[str, Any]:
    providers = [
        {
            "name": f"p{i}",
            "type": "openai",
            "baseURL": "https://api.openai.com/v1",
            "apiKey": {"secretRef": {"name": secret, "key": key}},
        }
        for i, (secret, key) in enumerate(secrets)
    ]
    return {
        "apiVersion": "llm-rollout.io/v1alpha1",
        "kind": "LLMRollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": labels}, "providers": providers},
    }


#: A pod from a Deployment, as the API server hands it to the webhook on CREATE.
MARKETING_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "marketing-api-7d9f8b6c5-",
        "namespace": NAMESPACE,
        "labels": {"app": "marketing-api", "pod-template-hash": "7d9f8b6c5"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "marketing-api-7d9f8b6c5",
                "uid": "0b7f2a8e-6a3b-4c1e-9d7a-1f2e3d4c5b6a",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    },
    "spec": {
        "serviceAccountName": "marketing-api",
        "initContainers": [
            {"name": "migrate", "image": "shop/marketing-api:1.4.2", "args": ["migrate"]}
        ],
        "containers": [
            {
                "name": "api",
                "image": "shop/marketing-api:1.4.2",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            },
            {"name": "worker", "image": "shop/marketing-worker:1.4.2"},
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "volumes": [{"name": "cache", "emptyDir": {}}],
    },
}


def pod(**overrides: Any) -> dict[str, Any]:
    """A deep copy of MARKETING_POD with top-level metadata entries replaced."""
    result = copy.deepcopy(MARKETING_POD)
    result["metadata"].update(overrides)
    return result


#: A bare pod: no labels, no init containers, no env, no volumes (every list absent).
BARE_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "one-off", "namespace": NAMESPACE,
                 "annotations": {"llm-rollout.io/rollout": "marketing"}},
    "spec": {"containers": [{"name": "job", "image": "shop/report:2"}]},
}  # fmt: skip
