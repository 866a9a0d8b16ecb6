"""Whether the JSON a request asks for can be written at all, before anyone tries.

A schema can demand more than any answer holds (`minItems: 10000000`), nothing at all
(`minItems` above `maxItems`), or an infinite answer (a required property whose `$ref`
leads back to itself with no way out). A provider refuses such a request or runs into
its output limit; the mock would loop, or recurse until it crashed. So every schema a
request carries -- its structured-output format and its tools' parameters, in each
dialect's place for them -- is checked once, statically, before routing: a request
that cannot be answered gets a 400 in its dialect naming the field, on either arm, and
costs nothing. Pure; the walk is bounded by the answer's token limit, not the schema.
"""

from __future__ import annotations

import math
from typing import Any

from proxy.dialects import BadRequest, ParsedRequest
from proxy.dialects.limits import output_limit
from proxy.mock.schema import from_openapi

#: The answer's limit when neither the request nor the model's family says one.
DEFAULT_LIMIT = 128_000
#: `$ref` hops followed along one path: legitimate schemas stay far below.
MAX_REF_CHAIN = 64


class _Unanswerable(Exception):
    pass


def check_answerable(dialect: str, request: ParsedRequest) -> None:
    """Raise `BadRequest` (a 400 naming the field) for a schema no answer can satisfy."""
    limit = request.max_tokens or output_limit(request.model) or DEFAULT_LIMIT
    for field, schema in _schemas(dialect, request.payload):
        if not isinstance(schema, dict):
            continue
        why = unanswerable(schema, limit)
        if why is not None:
            raise BadRequest(f"'{field}' {why}")


def unanswerable(schema: dict[str, Any], limit: int) -> str | None:
    """Why no answer of at most `limit` tokens can satisfy `schema`, or None if one can.

    Also what a schema written into a prompt (`proxy.mock.prompted`) is held to: it is
    as untrusted as one in the request's format field.
    """
    walk = _Walk(schema, limit)
    try:
        walk.check_refs()
        tokens = walk.size(schema, frozenset(), "")
    except _Unanswerable as why:
        return f"cannot be answered: {why}"
    except RecursionError:
        return "nests schemas and $refs too deeply"
    if math.isinf(tokens):
        return f"cannot be answered: {walk.why}"
    if tokens > limit:
        return (
            f"cannot be answered: the smallest valid JSON needs more than "
            f"{limit} tokens, the most this answer may hold"
        )
    return None


def _schemas(dialect: str, payload: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every (field, JSON schema) of the request, in its dialect's places."""

    def get(value: Any, *path: str) -> Any:
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    found: list[tuple[str, Any]] = []
    given = payload.get("tools")
    tools: list[Any] = given if isinstance(given, list) else []
    if dialect == "openai.chat":
        found.append(("response_format.json_schema.schema",
                      get(payload, "response_format", "json_schema", "schema")))  # fmt: skip
        found += [(f"tools[{i}].function.parameters", get(t, "function", "parameters"))
                  for i, t in enumerate(tools)]  # fmt: skip
    elif dialect == "openai.responses":
        found.append(("text.format.schema", get(payload, "text", "format", "schema")))
        found += [(f"tools[{i}].parameters", get(t, "parameters")) for i, t in enumerate(tools)]
    elif dialect == "anthropic.messages":
        found.append(("output_config.format.schema",
                      get(payload, "output_config", "format", "schema")))  # fmt: skip
        found += [(f"tools[{i}].input_schema", get(t, "input_schema"))
                  for i, t in enumerate(tools)]  # fmt: skip
    elif dialect == "gemini.generate_content":
        openapi = get(payload, "generationConfig", "responseSchema")
        found.append(("generationConfig.responseSchema",
                      from_openapi(openapi) if isinstance(openapi, dict) else None))  # fmt: skip
        found.append(("generationConfig.responseJsonSchema",
                      get(payload, "generationConfig", "responseJsonSchema")))  # fmt: skip
        for i, tool in enumerate(tools):
            declarations = get(tool, "functionDeclarations")
            for j, declaration in enumerate(declarations if isinstance(declarations, list) else []):
                where = f"tools[{i}].functionDeclarations[{j}]"
                params = get(declaration, "parameters")
                converted = from_openapi(params) if isinstance(params, dict) else None
                found.append((f"{where}.parameters", converted))
                found.append((f"{where}.parametersJsonSchema",
                              get(declaration, "parametersJsonSchema")))  # fmt: skip
    return found


class _Walk:
    """The fewest tokens a valid instance takes (a lower bound); infinite when none
    exists (`why` says the first reason found), `_Unanswerable` for a broken schema."""

    def __init__(self, root: dict[str, Any], limit: int) -> None:
        self.root, self.limit = root, limit
        self.why = "no instance can satisfy it"

    def _impossible(self, why: str) -> float:
        if self.why == "no instance can satisfy it":
            self.why = why
        return math.inf

    def size(self, node: Any, refs: frozenset[str], where: str) -> float:
        if not isinstance(node, dict):
            return 1
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in refs:  # a required path back to itself: no finite instance
                return self._impossible(
                    f"{ref!r} requires itself again (a $ref cycle with no optional way out)"
                )
            if len(refs) >= MAX_REF_CHAIN:
                raise _Unanswerable(f"$ref chains more than {MAX_REF_CHAIN} deep at {ref!r}")
            return self.size(self._resolve(ref), refs | {ref}, where)
        if "const" in node or "enum" in node:
            return 1
        branches = node.get("anyOf") or node.get("oneOf")
        if isinstance(branches, list) and branches:
            return min(self.size(b, refs, where) for b in branches)
        parts = node.get("allOf")
        if isinstance(parts, list) and parts:
            return max(self.size(p, refs, where) for p in parts)
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "null" in kinds:
            return 1
        if "object" in kinds or "properties" in node or "required" in node:
            return self._object(node, refs, where)
        if "array" in kinds or "items" in node or "minItems" in node:
            return self._array(node, refs, where)
        if "string" in kinds:
            low, high = node.get("minLength", 0), node.get("maxLength")
            if not _ordered(low, high):
                return self._impossible(f"minLength {low} is more than maxLength {high}")
            return 1 + (low // 64 if isinstance(low, int) else 0)
        low, high = node.get("minimum"), node.get("maximum")
        if not _ordered(low, high):
            return self._impossible(f"minimum {low} is more than maximum {high}")
        return 1

    def _object(self, node: dict[str, Any], refs: frozenset[str], where: str) -> float:
        given = node.get("properties")
        properties: dict[str, Any] = given if isinstance(given, dict) else {}
        extra = node.get("additionalProperties", {})
        required = [r for r in node.get("required") or [] if isinstance(r, str)]
        total: float = 2
        for key in required:
            sub = properties.get(key, extra if isinstance(extra, dict) else {})
            total += 2 + self.size(sub, refs, where)
            if total > self.limit:
                return total
        return total

    def _array(self, node: dict[str, Any], refs: frozenset[str], where: str) -> float:
        low, high = node.get("minItems", 0), node.get("maxItems")
        if not _ordered(low, high):
            return self._impossible(f"minItems {low} is more than maxItems {high}")
        if not isinstance(low, int) or low <= 0:
            return 2
        if low > self.limit:
            return low + 2.0  # each item is at least one token: past the limit already
        return 2 + low * (1 + self.size(node.get("items", {}), refs, where))

    def check_refs(self) -> None:
        """Every `$ref` anywhere in the schema, required or not, must resolve."""
        stack: list[Any] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    self._resolve(ref)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise _Unanswerable(f"only local $refs are supported, not {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict | bool):
            raise _Unanswerable(f"$ref {ref!r} points to nothing")
        return node


def _ordered(low: Any, high: Any) -> bool:
    """False only for two numbers in the wrong order (a bound that admits nothing)."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    return not numbers or low <= high
