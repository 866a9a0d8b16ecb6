"""The committed CRD matches the schema in proxy.config, and its schema judges examples right."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml

from rollout_operator import crd

GOOD: dict[str, Any] = {
    "apiVersion": "llm-rollout.io/v1alpha1",
    "kind": "LLMRollout",
    "metadata": {"name": "m"},
    "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "providers": [{"name": "openai-primary", "type": "openai",
                       "baseURL": "https://api.openai.com/v1",
                       "apiKey": {"secretRef": {"name": "k", "key": "openai"}}}],
        "fallback": ["openai-primary", "mock"],
        "strategy": {"steps": [{"setWeight": 5}, {"pause": {"duration": "10m"}}, {"pause": {}}],
                     "analysis": {"interval": "1m", "metrics": [{"name": "error-rate",
                                                                 "max": 0.01}]}},
        "budget": {"dailyUSD": "500.00"},
    },
}  # fmt: skip


def schema() -> dict[str, Any]:
    version = crd.crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crd_matches_a_fresh_generation() -> None:
    committed = crd.COMMITTED.read_text(encoding="utf-8")
    assert committed == crd.render(), "run `python -m rollout_operator.crd --write`"


def test_crd_names_columns_and_status_subresource() -> None:
    document = yaml.safe_load(crd.COMMITTED.read_text(encoding="utf-8"))
    assert document["metadata"]["name"] == "llmrollouts.llm-rollout.io"
    assert document["spec"]["names"]["shortNames"] == ["llmro"]
    version = document["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Weight", "Shadow", "Step", "Spent", "Age"]


def _keywords(node: Any) -> set[str]:
    """Schema keywords used anywhere (property names are not keywords)."""
    if isinstance(node, list):
        return set().union(*(_keywords(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {k for k in node if k != "properties"}
    for key, value in node.items():
        children = value.values() if key == "properties" else [value]
        for child in children:
            found |= _keywords(child)
    return found


def test_schema_is_structural() -> None:
    keywords = _keywords(schema())
    assert not keywords & {"$ref", "$defs", "anyOf", "oneOf", "title", "default", "const"}
    assert "null" not in yaml.safe_dump(schema())


def test_good_example_is_accepted() -> None:
    jsonschema.Draft4Validator(schema()).validate(GOOD)


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("strategy", "steps", 0, "setWeight"), 150, "150 is greater than the maximum of 100"),
        (("strategy", "steps", 0, "setWeight"), -1, "-1 is less than the minimum of 0"),
        (("providers", 0, "type"), "azure", "'azure' is not one of"),
        (("strategy", "steps", 1, "pause", "duration"), "ten minutes", "does not match"),
        (("budget", "dailyUSD"), "lots", "does not match"),
    ],
)
def test_bad_values_are_rejected_with_the_reason(
    path: tuple[Any, ...], value: Any, complaint: str
) -> None:
    bad = copy.deepcopy(GOOD)
    node = bad["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=complaint):
        jsonschema.Draft4Validator(schema()).validate(bad)


def test_cross_field_rules_are_cel_validations() -> None:
    spec = schema()["properties"]["spec"]
    messages = [rule["message"] for rule in spec["x-kubernetes-validations"]]
    assert any("fallback names a provider that does not exist" in m for m in messages)
    step = spec["properties"]["strategy"]["properties"]["steps"]["items"]
    metric = spec["properties"]["strategy"]["properties"]["analysis"]["properties"]["metrics"]
    assert metric["items"]["x-kubernetes-validations"][0]["rule"] == (
        "!has(self.minVsMock) || !has(self.prometheus)"
    )
    assert step["x-kubernetes-validations"][0]["rule"] == (
        "[has(self.setWeight), has(self.setShadow), has(self.pause)].filter(x, x).size() == 1"
    )
