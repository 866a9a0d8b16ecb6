"""The providers' own request limits, checked before any work or any real call.

A request a provider would refuse anyway must cost nothing: it gets the 400 here, in
the client's dialect and naming the field, whether the mock or a real provider would
have served it. The same limits bound the mock's work (a `dimensions` of 10^8 or an
array schema with `minItems: 10^7` would otherwise fill the pod's memory and block
its event loop).

Sources: OpenAI's embeddings reference (2,048 inputs; `dimensions` only for the
text-embedding-3 models, up to their native width) and structured-outputs guide
(5,000 object properties, 10 nesting levels, 1,000 enum values, 120,000 characters of
names and enum values in all); `n` up to 128 (chat completions reference).
"""

from __future__ import annotations

from typing import Any, TypeGuard

from proxy.dialects.base import BadRequest

#: Native vector width of each embeddings model; `dimensions` may shorten, never widen.
EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
#: Models whose width is fixed: OpenAI refuses `dimensions` for them.
FIXED_DIMENSIONS = frozenset({"text-embedding-ada-002"})
#: The width of an embeddings model not in the table (the mock answers with it).
DEFAULT_DIMENSIONS = 1536
MAX_EMBEDDING_INPUTS = 2048
MAX_CHOICES = 128

MAX_SCHEMA_PROPERTIES = 5000
MAX_SCHEMA_DEPTH = 10
MAX_SCHEMA_ENUM_VALUES = 1000
MAX_SCHEMA_NAME_CHARS = 120_000
#: No model's output (the largest is ~128k tokens) holds more array items than this,
#: each item costing at least a token and a separator; a schema requiring more cannot
#: be answered by any provider, and the mock must not try.
MAX_REQUIRED_ITEMS = 65_536
#: JSON levels a schema may span, keywords included (well above what depth 10 needs).
MAX_SCHEMA_LEVELS = 100
#: Keywords whose values are data, not subschemas.
_NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples", "required"})
#: Keywords whose values map names to subschemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def check_embeddings(model: str, payload: dict[str, Any]) -> None:
    inputs = payload.get("input")
    if (
        isinstance(inputs, list)
        and inputs
        and not all(isinstance(t, int) for t in inputs)
        and len(inputs) > MAX_EMBEDDING_INPUTS
    ):
        raise BadRequest(
            f"'input' holds {len(inputs)} items; at most {MAX_EMBEDDING_INPUTS} per request"
        )
    dimensions = payload.get("dimensions")
    if dimensions is None:
        return
    if model in FIXED_DIMENSIONS:
        raise BadRequest(f"'dimensions': model {model} does not support specifying dimensions")
    width = EMBEDDING_DIMENSIONS.get(model, DEFAULT_DIMENSIONS)
    if isinstance(dimensions, int) and dimensions > width:
        raise BadRequest(f"'dimensions' must be at most {width} for model {model}")


def check_choices(payload: dict[str, Any]) -> None:
    n = payload.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and not 1 <= n <= MAX_CHOICES:
        raise BadRequest(f"'n' must be between 1 and {MAX_CHOICES}")


def check_schema(schema: Any, field: str) -> None:
    """Refuse a structured-output schema over the documented limits or unsatisfiable.

    `field` names where the schema sits in the request, for the error message.
    """
    if not isinstance(schema, dict):
        return
    tally = _Tally(schema, field)
    tally.walk(schema, 0)
    tally.must_terminate(schema, ())


class _Tally:
    def __init__(self, root: dict[str, Any], field: str) -> None:
        self.root = root
        self.field = field
        self.properties = 0
        self.enum_values = 0
        self.name_chars = 0
        self.visits = 0

    def fail(self, why: str) -> None:
        raise BadRequest(f"'{self.field}': {why}")

    def walk(self, node: Any, depth: int, level: int = 0) -> None:
        """Count limits over every subschema; `depth` counts nested objects and arrays,
        `level` every JSON level (so a deep chain of `not`s cannot exhaust the stack)."""
        if level > MAX_SCHEMA_LEVELS:
            self.fail(f"schema nests deeper than {MAX_SCHEMA_LEVELS} JSON levels")
        if isinstance(node, list):
            for item in node:
                self.walk(item, depth, level + 1)
            return
        if not isinstance(node, dict):
            return
        if depth > MAX_SCHEMA_DEPTH:
            self.fail(f"schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        props = node.get("properties")
        if isinstance(props, dict):
            self.properties += len(props)
            self.name_chars += sum(len(str(name)) for name in props)
            if self.properties > MAX_SCHEMA_PROPERTIES:
                self.fail(f"schema has more than {MAX_SCHEMA_PROPERTIES} properties in all")
        enum = node.get("enum")
        if isinstance(enum, list):
            self.enum_values += len(enum)
            self.name_chars += sum(len(v) for v in enum if isinstance(v, str))
            if self.enum_values > MAX_SCHEMA_ENUM_VALUES:
                self.fail(f"schema has more than {MAX_SCHEMA_ENUM_VALUES} enum values in all")
        if self.name_chars > MAX_SCHEMA_NAME_CHARS:
            self.fail(f"property names and enum values exceed {MAX_SCHEMA_NAME_CHARS} characters")
        self.check_bounds(node)
        for key, value in node.items():
            if key in _NOT_SCHEMAS or not isinstance(value, (dict, list)):
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                inner = depth + 1 if key == "properties" else depth
                for sub in value.values():
                    self.walk(sub, inner, level + 2)
            else:
                self.walk(value, depth + 1 if key == "items" else depth, level + 1)

    def check_bounds(self, node: dict[str, Any]) -> None:
        for low_key, high_key in (
            ("minItems", "maxItems"),
            ("minLength", "maxLength"),
            ("minProperties", "maxProperties"),
            ("minimum", "maximum"),
        ):
            low, high = node.get(low_key), node.get(high_key)
            if _number(low) and _number(high) and low > high:
                self.fail(f"{low_key} {low} is greater than {high_key} {high}: unsatisfiable")
        for key in ("minItems", "minLength"):
            low = node.get(key)
            if _number(low) and low > MAX_REQUIRED_ITEMS:
                self.fail(f"{key} {low} is more than any answer can hold ({MAX_REQUIRED_ITEMS})")

    def must_terminate(self, node: Any, refs: tuple[str, ...]) -> None:
        """Refuse a schema whose every instance is infinite: a `$ref` cycle through
        required properties (or non-empty arrays) has no finite value."""
        self.visits += 1
        if not isinstance(node, dict) or self.visits > MAX_SCHEMA_PROPERTIES:
            return  # a schema this wide was already refused by `walk` or is finite
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in refs:
                self.fail(f"schema requires itself through {ref}: no finite value satisfies it")
            self.must_terminate(self.lookup(ref), (*refs, ref))
        props = node.get("properties")
        required = node.get("required")
        if isinstance(props, dict) and isinstance(required, list):
            for name in required:
                if isinstance(name, str):
                    self.must_terminate(props.get(name), refs)
        items = node.get("items")
        low = node.get("minItems")
        if _number(low) and low > 0:
            self.must_terminate(items, refs)
        branches = node.get("allOf")
        for branch in branches if isinstance(branches, list) else ():
            self.must_terminate(branch, refs)

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return None
        node: Any = self.root
        for part in ref.lstrip("#").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, dict) else None
        return node


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
