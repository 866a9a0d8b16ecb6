"""Property tests: whatever JSON schema a request carries, the mock's instance validates."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import parse_spec
from proxy.dialects import ROUTES
from proxy.mock import answer
from proxy.mock.schema import from_openapi, generate

NAMES = st.sampled_from(
    ["email", "headline", "price", "url", "title", "body", "count", "rating", "id", "date",
     "tags", "cta", "subject", "name", "description", "score", "x", "created_at", "channel"]
)  # fmt: skip


def _bounded(low: int, high: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(low, high), st.integers(0, high)).map(
        lambda pair: (pair[0], pair[0] + pair[1])
    )


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    choice = draw(st.sampled_from(["plain", "length", "format", "pattern", "enum", "const"]))
    if choice == "length":
        low, high = draw(_bounded(0, 40))
        schema |= {"minLength": low, "maxLength": max(high, 1)}
    elif choice == "format":
        schema["format"] = draw(st.sampled_from(["date", "date-time", "email", "uri", "uuid"]))
    elif choice == "pattern":
        schema["pattern"] = draw(st.sampled_from(
            [r"^[A-Z]{3}-\d{4}$", r"^#[0-9a-fA-F]{6}$", r"^(draft|live)$", r"^\w+@\w+\.com$",
             r"^[a-z]+(-[a-z]+)*$", r"v\d+\.\d+"]
        ))  # fmt: skip
    elif choice == "enum":
        schema["enum"] = draw(st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True))
    elif choice == "const":
        schema["const"] = draw(st.text(max_size=8))
    return schema


@st.composite
def number_schemas(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    low = draw(st.integers(-1000, 1000))
    span = draw(st.integers(10, 2000))  # room for a multiple of 5 inside open bounds
    if draw(st.booleans()):
        schema["minimum" if draw(st.booleans()) else "exclusiveMinimum"] = low
    if draw(st.booleans()):
        schema["maximum" if draw(st.booleans()) else "exclusiveMaximum"] = low + span
    if kind == "integer" and draw(st.booleans()):
        schema["multipleOf"] = draw(st.sampled_from([1, 2, 5]))
    return schema


def leaves() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        string_schemas(),
        number_schemas(),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.just({"type": ["string", "null"]}),
    )


def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.builds(
        lambda props, closed, required_all: {
            "type": "object",
            "properties": props,
            "required": sorted(props) if required_all else sorted(props)[: len(props) // 2],
            **({"additionalProperties": False} if closed else {}),
        },
        st.dictionaries(NAMES, children, min_size=1, max_size=5),
        st.booleans(),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, bounds: {
            "type": "array", "items": items, "minItems": bounds[0], "maxItems": bounds[1]},
        children,
        _bounded(0, 3),
    )  # fmt: skip
    # uniqueItems only over domains with enough distinct values to be satisfiable.
    unique_arrays = st.builds(
        lambda items, bounds: {"type": "array", "items": items, "uniqueItems": True,
                               "minItems": bounds[0], "maxItems": bounds[1]},
        st.sampled_from([{"type": "string"}, {"type": "integer"},
                         {"type": "string", "format": "uuid"}, {"type": "number"}]),
        _bounded(0, 4),
    )  # fmt: skip
    any_of = st.lists(children, min_size=1, max_size=3).map(lambda options: {"anyOf": options})
    # oneOf needs branches that cannot both match: one per type.
    one_of = st.lists(
        st.sampled_from(["string", "integer", "boolean", "null", "object", "array"]),
        min_size=1, max_size=3, unique=True,
    ).map(lambda kinds: {"oneOf": [{"type": k} for k in kinds]})  # fmt: skip
    return st.one_of(objects, arrays, unique_arrays, any_of, one_of)


SCHEMAS = st.recursive(leaves(), extend, max_leaves=12)


@settings(max_examples=250, deadline=None)
@given(schema=SCHEMAS, seed=st.integers(0, 2**32), name=NAMES)
def test_every_generated_instance_validates(schema: dict[str, Any], seed: int, name: str) -> None:
    instance = generate(schema, random.Random(seed), name)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(instance), list(validator.iter_errors(instance))


@settings(max_examples=100, deadline=None)
@given(schema=SCHEMAS, seed=st.integers(0, 2**32))
def test_refs_and_defs_resolve(schema: dict[str, Any], seed: int) -> None:
    wrapped = {
        "type": "object",
        "properties": {"first": {"$ref": "#/$defs/item"}, "more": {
            "type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 1}},
        "required": ["first", "more"],
        "$defs": {"item": schema},
        "definitions": {"item": schema},
    }  # fmt: skip
    instance = generate(wrapped, random.Random(seed))
    jsonschema.validate(instance, wrapped)


def test_same_seed_same_instance() -> None:
    schema = {"type": "object", "properties": {"headline": {"type": "string"},
              "price": {"type": "number"}}, "required": ["headline", "price"]}  # fmt: skip
    assert generate(schema, random.Random(3)) == generate(schema, random.Random(3))
    assert generate(schema, random.Random(3)) != generate(schema, random.Random(4))


def test_values_fit_the_field_names() -> None:
    schema = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("email", "website_url", "headline")}
        | {"price": {"type": "number"}, "id": {"type": "string", "format": "uuid"}},
        "required": ["email", "website_url", "headline", "price", "id"],
    }
    value = generate(schema, random.Random(0))
    assert "@" in value["email"]
    assert value["website_url"].startswith("https://")
    assert len(value["headline"].split()) >= 2
    assert isinstance(value["price"], float)
    assert value["price"] > 0
    assert len(value["id"]) == 36


def test_recursive_schema_terminates() -> None:
    tree = {
        "$defs": {"node": {"type": "object", "properties": {
            "label": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "required": ["label", "children"]}},
        "$ref": "#/$defs/node",
    }  # fmt: skip
    jsonschema.validate(generate(tree, random.Random(1)), tree)


def test_all_of_merges_constraints() -> None:
    schema = {"allOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"properties": {"b": {"type": "integer", "minimum": 5, "maximum": 6}}, "required": ["b"]},
    ]}  # fmt: skip
    jsonschema.validate(generate(schema, random.Random(2)), schema)


def test_gemini_openapi_schema_converts() -> None:
    gemini = {
        "type": "OBJECT",
        "properties": {
            "title": {"type": "STRING"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "2"},
            "mood": {"type": "STRING", "format": "enum", "enum": ["calm", "bold"]},
            "note": {"type": "STRING", "nullable": True},
            "slogan": {"type": "STRING", "max_length": "12"},  # proto snake_case, int64 string
        },
        "required": ["title", "tags", "mood", "note", "slogan"],
    }
    schema = from_openapi(gemini)
    value = generate(schema, random.Random(5))
    jsonschema.validate(value, schema)
    assert len(value["tags"]) >= 2
    assert value["mood"] in {"calm", "bold"}
    assert len(value["slogan"]) <= 12


# -- every dialect's answer to a schema-carrying request validates ---------------------------

_DIALECTS = {d.name: d for _, d in ROUTES}
_MODELS = {
    "openai.chat": "gpt-4o-mini",
    "openai.responses": "gpt-4o-mini",
    "anthropic.messages": "claude-sonnet-5",
    "gemini.generate_content": "gemini-2.5-flash",
}
_USER = "Write our spring campaign"


def _request(dialect: str, schema: dict[str, Any], tool: bool) -> dict[str, Any]:
    """A request asking for JSON against `schema`, or forcing a tool that takes it."""
    if dialect == "openai.chat":
        base: dict[str, Any] = {"model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": _USER}]}  # fmt: skip
        if tool:
            return base | {
                "tools": [{"type": "function", "function": {"name": "save", "parameters": schema}}],
                "tool_choice": "required",
            }
        wanted = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
        return base | {"response_format": wanted}
    if dialect == "openai.responses":
        base = {"model": "gpt-4o-mini", "input": _USER}
        if tool:
            return base | {"tools": [{"type": "function", "name": "save", "parameters": schema}],
                           "tool_choice": {"type": "function", "name": "save"}}  # fmt: skip
        return base | {"text": {"format": {"type": "json_schema", "name": "o", "schema": schema}}}
    if dialect == "anthropic.messages":
        base = {"model": "claude-sonnet-5", "max_tokens": 4000,
                "messages": [{"role": "user", "content": _USER}]}  # fmt: skip
        if tool:
            return base | {"tools": [{"name": "save", "input_schema": schema}],
                           "tool_choice": {"type": "tool", "name": "save"}}  # fmt: skip
        return base | {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    base = {"contents": [{"role": "user", "parts": [{"text": _USER}]}]}
    if tool:
        return base | {
            "tools": [{"functionDeclarations": [{"name": "save", "parametersJsonSchema": schema}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        }
    return base | {"generationConfig": {"responseMimeType": "application/json",
                                        "responseJsonSchema": schema}}  # fmt: skip


def _produced(dialect: str, body: dict[str, Any], tool: bool) -> Any:
    """The JSON instance inside a dialect's answer (a tool's arguments, or the text)."""
    if dialect == "openai.chat":
        message = body["choices"][0]["message"]
        if tool:
            return json.loads(message["tool_calls"][0]["function"]["arguments"])
        return json.loads(message["content"])
    if dialect == "openai.responses":
        item = body["output"][0]
        return json.loads(item["arguments"] if tool else item["content"][0]["text"])
    if dialect == "anthropic.messages":
        block = body["content"][0]
        return block["input"] if tool else json.loads(block["text"])
    part = body["candidates"][0]["content"]["parts"][0]
    return part["functionCall"]["args"] if tool else json.loads(part["text"])


@settings(max_examples=120, deadline=None)
@given(
    schema=SCHEMAS.map(
        lambda s: {"type": "object", "properties": {"result": s}, "required": ["result"]}
    ),
    seed=st.integers(0, 2**31),
    dialect=st.sampled_from(sorted(_MODELS)),
    tool=st.booleans(),
)
def test_every_dialect_answers_valid_json(
    schema: dict[str, Any], seed: int, dialect: str, tool: bool
) -> None:
    raw = json.dumps(_request(dialect, schema, tool)).encode()
    parsed = _DIALECTS[dialect].parse(raw, path_model=_MODELS[dialect])
    reply = answer(dialect, parsed, parse_spec({"mock": {"seed": seed}}).mock)
    assert reply.status == 200
    jsonschema.validate(_produced(dialect, json.loads(reply.body), tool), schema)
