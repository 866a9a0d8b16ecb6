"""JSON asked for in the prompt's own words, against the schema the prompt spells out.

Many apps never set a structured-output field: instructor's `Mode.JSON` sends
`response_format: json_object` with the JSON schema in the system prompt, its
`Mode.ANTHROPIC_JSON` only the schema in the system prompt; LangChain's
`PydanticOutputParser` pastes "format instructions" with the schema into the user
turn; pydantic-ai's `PromptedOutput` writes "Always respond with a JSON object
that's compatible with this schema: ..."; hand-written prompts say "Return JSON
matching this schema: ..." or list fields Pydantic-style (`headline: str`), and
Anthropic users prefill the assistant turn with `{`. A real model follows the
prompt; the mock must too, or the app's parser fails on the mock only.

So this module finds, in the system prompt and the last user turn, whether JSON is
asked for and the schema to answer against: the last JSON schema in the text
(fenced or inline; LangChain's format instructions show an example schema first),
else a Pydantic-style field listing, else the keys of an example object. The
schema is untrusted like any in a request: one no answer can satisfy (by the
static check of `proxy.mock.answerable`) is dropped and a plain object is written
instead. Scanning is bounded in characters and in parse attempts, so a hostile
prompt costs a bounded amount of time. Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.mock.answerable import unanswerable
from proxy.mock.schema import Schema

#: Characters of the prompt searched (a schema beyond them is not seen).
MAX_SCAN = 256 * 1024
#: Places where a JSON object is tried in the text; most prompts hold a handful.
MAX_TRIES = 200
#: The most tokens the smallest instance of a prompt's schema may need: prompt schemas
#: are an app's answer types, far smaller; a bigger one is treated as no schema.
PROMPT_SCHEMA_TOKENS = 16_000


@dataclass(frozen=True, slots=True)
class Prompted:
    """JSON asked for in the prompt: against `schema` (None: any sensible object), after the
    assistant's `prefill` (Anthropic), which the answer continues rather than repeats."""

    schema: Schema | None = None
    prefill: str = ""


#: Words that ask for JSON without a schema: "Respond only with JSON", "return it as JSON".
_ASKS = re.compile(
    r"\b(?:respond|reply|answer|return|output|format|give|provide|produce)\w*\b"
    r"[^.\n]{0,60}?\bjson\b|\bjson[ \t]+only\b|\bonly[ \t]+(?:valid[ \t]+)?json\b",
    re.IGNORECASE,
)
_JSON_WORD = re.compile(r"\bjson\b", re.IGNORECASE)
#: Keys only a JSON schema has at its top (an example object has the answer's own keys).
_SCHEMA_KEYS = frozenset({"$defs", "definitions", "anyOf", "oneOf", "allOf", "$ref", "$schema"})


def prompted(system: str, prompt: str, prefill: str = "") -> Prompted | None:
    """What JSON the prompt asks for, or None when it asks for none."""
    text = f"{system[:MAX_SCAN]}\n{prompt[:MAX_SCAN]}"
    if not prefill.lstrip().startswith(("{", "[")):
        prefill = ""
    if not prefill and "json" not in text.lower():
        return None  # the common case, decided without a regex
    schema = prompt_schema(text)
    asked = bool(prefill) or bool(_ASKS.search(text))
    if not asked and not (schema is not None and _JSON_WORD.search(text)):
        return None
    return Prompted(schema, prefill)


def prompt_schema(text: str) -> Schema | None:
    """The answer's schema as `text` spells it out, checked to be answerable; else None."""
    objects = _objects(text)
    schemas = [o for o in objects if _is_schema(o)]
    try:
        schema = schemas[-1] if schemas else _field_listing(text) or _from_example(objects)
    except RecursionError:  # an example nested near the decoder's own limit
        return None
    if schema is None or unanswerable(schema, PROMPT_SCHEMA_TOKENS) is not None:
        return None
    return schema


def _objects(text: str) -> list[dict[str, Any]]:
    """JSON objects written in `text`, outermost ones, in order (at most `MAX_TRIES` tried)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    start = text.find("{")
    for _ in range(MAX_TRIES):
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        start = text.find("{", end)
    return found


def _is_schema(value: dict[str, Any]) -> bool:
    """An object-or-array JSON schema, not an example instance (LangChain's counter-example
    `{"properties": {"foo": ["bar", "baz"]}}` has a `properties` that holds no schemas)."""
    properties = value.get("properties")
    if isinstance(properties, dict) and properties:
        return all(isinstance(p, dict | bool) for p in properties.values())
    if value.get("type") in ("object", "array") or "items" in value:
        return True
    return bool(_SCHEMA_KEYS & value.keys()) and not properties


#: `name: type` (Pydantic, dataclass, TypedDict) or `name (type)` lines of a field listing.
_FIELD = re.compile(
    r"^[ \t]*(?:[-*\u2022][ \t]*|\d{1,2}[.)][ \t]*)?[`\"']?([A-Za-z_][A-Za-z0-9_]{0,63})[`\"']?"
    r"[ \t]*(?::|\(|-|=)[ \t]*[`\"']?((?:Optional\[|list\[|List\[|array of |"
    r"a list of |list of )?)"
    r"(str|string|text|int|integer|float|number|decimal|bool|boolean|dict|object|"
    r"datetime|date|url|email)s?\b([^\n]{0,80})",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD_TYPES = {
    "str": {"type": "string"},
    "string": {"type": "string"},
    "text": {"type": "string"},
    "int": {"type": "integer"},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "number": {"type": "number"},
    "decimal": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "dict": {"type": "object"},
    "object": {"type": "object"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "url": {"type": "string", "format": "uri"},
    "email": {"type": "string", "format": "email"},
}


def _field_listing(text: str) -> Schema | None:
    """A schema from two or more `name: type` lines ("headline: str", "tags: list[str]")."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, wrapper, kind, rest in _FIELD.findall(text):
        if name in properties:
            continue
        field: dict[str, Any] = dict(_FIELD_TYPES[kind.lower()])
        wrapper = wrapper.lower()
        if "list" in wrapper or "array" in wrapper:
            field = {"type": "array", "items": field}
        properties[name] = field
        optional = "optional" in wrapper or re.search(r"\|\s*None|optional", rest, re.I)
        if not optional:
            required.append(name)
    if len(properties) < 2:
        return None
    return {"type": "object", "properties": properties, "required": required}


def _from_example(objects: list[dict[str, Any]]) -> Schema | None:
    """The keys and value types of the last example object ("JSON like {"headline": ...}")."""
    if not objects or not objects[-1]:
        return None
    example = objects[-1]
    return {
        "type": "object",
        "properties": {key: _type_of(value) for key, value in example.items()},
        "required": list(example),
    }


def _type_of(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, list):
        return {"type": "array", "items": _type_of(value[0]) if value else {}}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {k: _type_of(v) for k, v in value.items()},
            "required": list(value),
        }
    return {"type": "string"}


def continuation(text: str, prefill: str) -> str:
    """`text` less the `prefill` the assistant turn already holds, when it starts with it
    (Anthropic returns only what follows a prefill; the app joins the two)."""
    head = prefill.strip()
    return text[len(head) :] if head and text.startswith(head) else text
