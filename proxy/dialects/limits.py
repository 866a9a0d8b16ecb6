"""The providers' own request limits: one table, checked before a real call and by the mock.

A request a provider would refuse costs nothing and reaches no provider: it gets the
provider's 400 in the client's dialect, naming the field, from the sidecar itself. The
same checks keep one request from taking the whole pod down on the mock (an embedding
of 100 million dimensions times 2,048 inputs is gigabytes), so the mock answers what
the provider would answer, not what it would have crashed on.

Figures are the providers' published maxima (a model family's largest, so a valid
request is never refused); a model not in a table is not limited here.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.base import BadRequest

#: The longest answer (max output tokens) of model families, by name prefix (first match
#: wins; a dated snapshot matches its family). Also what a budget reserves for a request
#: that sets no max tokens (`proxy.budget.pricing`).
OUTPUT_LIMITS: tuple[tuple[str, int], ...] = (
    ("gpt-4o", 16_384), ("chatgpt-4o", 16_384), ("gpt-4.1", 32_768),
    ("gpt-4-turbo", 4_096), ("gpt-3.5-turbo", 4_096),
    ("o1", 100_000), ("o3", 100_000), ("o4", 100_000), ("gpt-5", 128_000),
    ("gemini-1.5", 8_192), ("gemini-2.0", 8_192), ("gemini-2.5", 65_536),
)  # fmt: skip
#: Embedding models: the largest `dimensions` (None: the model takes no `dimensions`).
EMBEDDING_DIMENSIONS: dict[str, int | None] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": None,
}
#: OpenAI embeddings: inputs per request.
MAX_EMBEDDING_INPUTS = 2048
#: OpenAI chat `n` (choices per request); Gemini `candidateCount`.
MAX_CHOICES = 128
MAX_CANDIDATES = 8
#: OpenAI structured outputs (strict json_schema): object properties in all, nesting
#: levels, enum values in all, characters of all property names, enum values and consts.
SCHEMA_PROPERTIES = 5000
SCHEMA_DEPTH = 10
SCHEMA_ENUM_VALUES = 1000
SCHEMA_STRING_CHARS = 120_000


def output_limit(model: str) -> int | None:
    """The model family's longest answer, or None when not listed."""
    name = model.lower().removeprefix("models/")
    return next((n for prefix, n in OUTPUT_LIMITS if name.startswith(prefix)), None)


def check_max_tokens(model: str, value: int | None, field: str) -> None:
    limit = output_limit(model)
    if value is not None and limit is not None and value > limit:
        raise BadRequest(
            f"'{field}' is {value}, more than {model} can generate ({limit} tokens); "
            f"set it to {limit} or less"
        )


def check_count(value: Any, limit: int, field: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        raise BadRequest(f"'{field}' is {value}; at most {limit} are allowed")


def check_embeddings(model: str, dimensions: int | None, inputs: int) -> None:
    if inputs > MAX_EMBEDDING_INPUTS:
        raise BadRequest(f"'input' has {inputs} items; at most {MAX_EMBEDDING_INPUTS} per request")
    if dimensions is None or model not in EMBEDDING_DIMENSIONS:
        return
    most = EMBEDDING_DIMENSIONS[model]
    if most is None:
        raise BadRequest(f"'dimensions': {model} does not support specifying dimensions")
    if dimensions > most:
        raise BadRequest(f"'dimensions' is {dimensions}; {model} has at most {most}")


def check_strict_schema(schema: Any, field: str) -> None:
    """OpenAI's documented limits on a strict structured-output schema."""
    properties = enums = chars = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        found = node.get("properties")
        if isinstance(found, dict) and found:
            if depth > SCHEMA_DEPTH:
                raise BadRequest(f"'{field}' nests objects {depth} levels deep; at most "
                                 f"{SCHEMA_DEPTH} are allowed")  # fmt: skip
            properties += len(found)
            chars += sum(len(str(k)) for k in found)
            stack.extend((child, depth + 1) for child in found.values())
        values = node.get("enum")
        if isinstance(values, list):
            enums += len(values)
            chars += sum(len(v) for v in values if isinstance(v, str))
        if isinstance(node.get("const"), str):
            chars += len(node["const"])
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                stack.append((node[key], depth + (key == "items")))
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            if isinstance(node.get(key), list):
                stack.extend((child, depth) for child in node[key])
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), dict):
                stack.extend((child, depth) for child in node[key].values())
    for count, limit, what in (
        (properties, SCHEMA_PROPERTIES, "object properties"),
        (enums, SCHEMA_ENUM_VALUES, "enum values"),
        (chars, SCHEMA_STRING_CHARS, "characters of property names, enum values and consts"),
    ):
        if count > limit:
            raise BadRequest(f"'{field}' has {count} {what}; at most {limit} are allowed")
