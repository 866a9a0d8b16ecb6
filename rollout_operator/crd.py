"""The LLMRollout CRD, generated from the pydantic spec so the two cannot drift.

`python -m rollout_operator.crd` prints the CRD; `--write` updates the committed
`charts/llm-rollout/files/crd.yaml`, which the Helm chart installs and `make manifests`
renders into `manifests/crd.yaml` (tests fail when either differs from a fresh generation).

Pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3.0
schema. The conversion inlines `$ref`s, drops `anyOf: [X, null]` for `X`, turns
numeric `exclusiveMinimum` into v3.0's boolean form, writes decimals as strings,
drops defaults (the operator applies them, and says them in the description) and
adds CEL rules for the cross-field checks pydantic does in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from proxy.config import LLMRolloutSpec
from proxy.config.model import MIN_VS_MOCK_NEEDS_SIDECARS
from rollout_operator import generated

GROUP = "llm-rollout.io"
VERSION = "v1alpha1"
KIND = "LLMRollout"
PLURAL = "llmrollouts"
SHORT_NAME = "llmro"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]{1,6})?$"
COMMITTED = Path(__file__).resolve().parent.parent / "charts" / "llm-rollout" / "files" / "crd.yaml"

#: Cross-field rules pydantic checks in validators, as CEL for the API server.
RULES: dict[str, list[dict[str, str]]] = {
    "LLMRolloutSpec": [
        {
            "rule": "!has(self.fallback) || self.fallback.all(n, n == 'mock' || "
            "(has(self.providers) && self.providers.exists(p, p.name == n)))",
            "message": "fallback names a provider that does not exist "
            "(each entry must be a provider name or 'mock')",
        },
        {
            "rule": "!has(self.providers) || "
            "self.providers.all(p, self.providers.exists_one(q, q.name == p.name))",
            "message": "provider names must be unique",
        },
    ],
    "Provider": [{"rule": "self.name != 'mock'", "message": "'mock' is reserved for the mock"}],
    "ApiKey": [
        {
            "rule": "[has(self.env), has(self.file), has(self.secretRef)].filter(x, x).size() == 1",
            "message": "set exactly one of env, file or secretRef",
        }
    ],
    "Step": [
        {
            "rule": "[has(self.setWeight), has(self.setShadow), has(self.pause)]"
            ".filter(x, x).size() == 1",
            "message": "a step is exactly one of setWeight, setShadow or pause",
        }
    ],
    "AnalysisMetric": [
        {
            "rule": "!has(self.minVsMock) || !has(self.prometheus)",
            "message": MIN_VS_MOCK_NEEDS_SIDECARS,
        }
    ],
    "LatencyPercentiles": [
        {
            "rule": "!has(self.p50) || !has(self.p95) || self.p95 >= self.p50",
            "message": "p95 must be >= p50",
        }
    ],
}


def _structural(node: Any, defs: dict[str, Any], name: str | None = None) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        return _structural(defs[ref], defs, ref)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        types = {o.get("type") for o in options}
        if types == {"number", "string"}:  # Decimal: a string in the CRD, exact in the operator
            chosen: dict[str, Any] = {"type": "string", "pattern": DECIMAL_PATTERN}
        else:
            (chosen,) = options
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _structural({**chosen, **rest}, defs, name)
    out: dict[str, Any] = {}
    default = node.get("default")
    for key, value in node.items():
        if key in ("title", "default", "additionalProperties") and not (
            key == "additionalProperties" and isinstance(value, dict)
        ):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "properties":
            out[key] = {k: _structural(v, defs) for k, v in value.items()}
        else:
            out[key] = _structural(value, defs)
    if default not in (None, [], {}) and not isinstance(default, dict):
        described = out.get("description", "")
        out["description"] = f"{described} (default {default})".strip()
    if name in RULES:
        out["x-kubernetes-validations"] = RULES[name]
    return out


def spec_schema() -> dict[str, Any]:
    schema = LLMRolloutSpec.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = _structural(schema, defs, "LLMRolloutSpec")
    return result


STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Written by the operator: phase, step, weight, analysis, budget, sidecars.",
    "x-kubernetes-preserve-unknown-fields": True,
}


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Weight", "type": "integer", "jsonPath": ".status.realWeight"},
                        {
                            "name": "Shadow",
                            "type": "integer",
                            "jsonPath": ".status.shadowPercent",
                        },
                        {
                            "name": "Step",
                            "type": "integer",
                            "jsonPath": ".status.currentStepIndex",
                        },
                        {
                            "name": "Spent",
                            "type": "string",
                            "jsonPath": ".status.budget.spentUSD",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Moves an app's LLM traffic from a mock to real "
                            "providers, step by step, judged by analysis, inside a budget.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": STATUS_SCHEMA,
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = (
        "# Generated by `python -m rollout_operator.crd --write` from proxy.config: do not edit.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    return generated.main(
        argv,
        prog="python -m rollout_operator.crd",
        description=__doc__,
        committed=COMMITTED,
        render=render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
