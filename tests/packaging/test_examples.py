"""The example manifests: LLMRollouts against the CRD's schema, the rest against Kubernetes'."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from proxy.config import parse_spec
from tests.packaging.conftest import CHART, ROOT

EXAMPLES = ROOT / "manifests" / "examples"
K8S_VERSION = "1.35.0"
BROKEN = yaml.safe_load((Path(__file__).parent / "broken_rollouts.yaml").read_text())


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((CHART / "files" / "crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def problems(document: dict[str, Any]) -> list[str]:
    """`path: reason` for each schema violation, as a user would want to read them."""
    # OpenAPI v3.0 schemas use draft 4's boolean exclusiveMinimum.
    validator = jsonschema.Draft4Validator(crd_schema())
    out = []
    for error in validator.iter_errors(document):
        path = ""
        for part in error.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append(f"{path}: {error.message}")
    return sorted(out)


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}#{i}", doc)
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for i, doc in enumerate(yaml.safe_load_all(path.read_text()))
        if doc
    ]


def rollout_example() -> dict[str, Any]:
    (doc,) = [d for _, d in example_documents() if d["kind"] == "LLMRollout"]
    return doc


def _locate(document: Any, dotted: str) -> tuple[Any, str | int]:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", piece)
        parts.append(name)
        parts += [int(i) for i in indexes if i]
    node = document
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def test_example_rollout_passes_the_crd_schema_and_the_sidecar_model() -> None:
    document = rollout_example()
    assert problems(document) == []
    strategy = parse_spec(document).strategy
    assert strategy is not None
    assert [s.set_weight for s in strategy.steps if s.set_weight] == [5, 25, 50, 75, 100]
    assert strategy.steps[0].set_shadow == 20, "shadow traffic first, before any real answer"
    assert strategy.analysis is not None
    bars = {m.name: (m.min, m.max, m.min_vs_mock) for m in strategy.analysis.metrics}
    assert bars["quality-score"] == (4.0, None, -0.2), "the migration plan's bars"
    assert bars["brand-compliance"] == (0.95, None, None)
    assert bars["rejection-rate"] == (None, 0.05, None)


@pytest.mark.parametrize("case", BROKEN, ids=[c["name"] for c in BROKEN])
def test_broken_rollout_fails_with_a_readable_message(case: dict[str, Any]) -> None:
    document = copy.deepcopy(rollout_example())
    for dotted, value in (case.get("set") or {}).items():
        node, key = _locate(document, dotted)
        node[key] = value
    if "delete" in case:
        node, key = _locate(document, case["delete"])
        del node[key]
    found = problems(document)
    assert any(case["expect"] in p for p in found), found


def test_standalone_config_map_holds_a_valid_sidecar_config() -> None:
    (config_map,) = [d for _, d in example_documents() if d["kind"] == "ConfigMap"]
    spec = parse_spec(yaml.safe_load(config_map["data"]["config.yaml"]), "config.yaml")
    assert spec.strategy is None
    assert 0 < spec.traffic.real_weight < 100


@pytest.mark.parametrize(
    ("name", "document"),
    [(n, d) for n, d in example_documents() if d["kind"] != "LLMRollout"],
    ids=[n for n, d in example_documents() if d["kind"] != "LLMRollout"],
)
def test_example_is_a_valid_kubernetes_object(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)
