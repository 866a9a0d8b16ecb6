"""JSON Schema -> an instance valid against it, with values that fit the field names.

An app that asks for structured output parses the answer into its own types
(pydantic models, zod schemas, ...); a mock answer that does not validate breaks
the app, and one full of "string" placeholders teaches nothing about how the app
renders real content. So the generator honours the constraints (types, required,
enums, bounds, lengths, patterns, formats, array sizes, `$ref`, combinators) and
picks values by field name: an ``email`` gets an address, a ``headline`` a headline,
a ``price`` a price.

Pure and deterministic: the caller's `random.Random` is the only source of variety.
Every candidate is checked with `jsonschema`; a constraint the generator cannot
honour by construction (an unusual pattern, a `not`) is met by retrying with other
draws, and the last candidate is returned if none validates.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import string
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from proxy.dialects.base import BadRequest
from proxy.marketing import LIMITS, scrub

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

Schema = dict[str, Any]

#: Attempts at a valid instance before giving the last one back.
_ATTEMPTS = 8
#: Below this nesting depth optional parts are skipped, so recursive schemas end.
_DEEP = 6
#: Values generated for one answer after which only what the schema requires is added:
#: optional properties and items multiply (16,000 required items each with a few
#: optional nested arrays were gigabytes); what is required is bounded by the answer's
#: token limit (`proxy.mock.answerable`), so the whole is bounded too.
_BUDGET = 20_000
#: The longest string and the most items one value gets, whatever a schema demands: a
#: demand beyond the answer's limit is refused before generation (`proxy.mock.answerable`)
#: except in a branch of anyOf/oneOf another branch satisfies, which may be drawn.
_MAX_TEXT = 1_000_000
_MAX_ITEMS = 20_000
#: Nesting at which a branch is given up as endless: an optional property whose schema
#: requires itself (`{"$ref": "#"}` under `required`) is answerable only by leaving it out,
#: which the static check allows, so the generator must find that out as it goes.
_ENDLESS = 150


class _Endless(Exception):
    """A value nested past `_ENDLESS`: the caller leaves the optional part out."""


_WORDS = [
    "bright",
    "fresh",
    "bold",
    "simple",
    "smart",
    "clean",
    "modern",
    "trusted",
    "fast",
    "easy",
    "natural",
    "premium",
    "everyday",
    "lasting",
    "vivid",
    "local",
    "crafted",
    "honest",
    "warm",
]
_NOUNS = [
    "collection",
    "launch",
    "design",
    "routine",
    "journey",
    "season",
    "moment",
    "upgrade",
    "favourite",
    "essentials",
    "story",
    "experience",
    "community",
    "offer",
]
_FIRST = ["Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Lena", "Omar", "Iris", "Theo"]
_LAST = ["Parker", "Nguyen", "Rossi", "Okafor", "Schmidt", "Silva", "Kim", "Larsen"]
_COMPANIES = ["Northwind", "Brightside", "Lumen & Co", "Evergreen Goods", "Bluepeak"]
_CITIES = ["Lisbon", "Austin", "Berlin", "Toronto", "Melbourne", "Osaka"]
_COUNTRIES = ["Portugal", "United States", "Germany", "Canada", "Australia", "Japan"]
_CTAS = ["Shop now", "Learn more", "Get started", "Sign up today", "Try it free", "Book a demo"]
_CHANNELS = ["email", "instagram", "linkedin", "x", "facebook", "google-ads", "blog", "tiktok"]
_TONES = ["friendly", "confident", "playful", "professional", "warm", "witty"]
_COLORS = ["#1E88E5", "#43A047", "#F4511E", "#8E24AA", "#FDD835"]
_SENTENCES = [
    "Made for people who want more from every day.",
    "Designed with care and built to last.",
    "Everything you need, nothing you don't.",
    "Join thousands of happy customers who made the switch.",
    "Fresh ideas, honest value and a team that listens.",
    "Discover what makes this season's collection stand out.",
]


@dataclass(frozen=True, slots=True)
class Hints:
    """What the request is about, so that text fields speak of it: the topic, the brand's
    name and keywords, and words the brand never uses."""

    topic: str = ""
    brand: str = ""
    keywords: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()


def generate(
    schema: Schema | bool, rng: random.Random, name: str = "", hints: Hints | None = None
) -> Any:
    """An instance of `schema` (JSON Schema, draft 2020-12 or 7 keywords).

    `name` is the field or tool name the value is for; it steers the content.
    """
    root: Schema = schema if isinstance(schema, dict) else {}
    validator = validator_of(root)
    candidate: Any = None
    for _ in range(_ATTEMPTS):
        candidate = _Gen(root, rng, hints or Hints()).value(root, name, 0)
        if validator is None or validator.is_valid(candidate):
            return candidate
    return candidate


def validator_of(schema: Schema) -> Any:
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema, format_checker=cls.FORMAT_CHECKER)
    except jsonschema.SchemaError:
        return None  # an invalid schema: do our best without a check


class _Gen:
    def __init__(self, root: Schema, rng: random.Random, hints: Hints) -> None:
        self.root = root
        self.rng = rng
        self.hints = hints
        self.made = 0  # values generated so far (see `_BUDGET`)

    def deep(self, depth: int) -> bool:
        """Whether only required parts are added from here: nested deep, or over budget."""
        return depth >= _DEEP or self.made > _BUDGET

    # -- dispatch -------------------------------------------------------------------------

    def value(self, schema: Schema | bool, name: str, depth: int) -> Any:
        self.made += 1
        if depth > _ENDLESS:
            raise _Endless
        if schema is True or schema == {}:
            return self.text(name, {}) if name else self.rng.choice(_SENTENCES)
        if not isinstance(schema, dict):
            return None
        schema = self.resolve(schema)
        schema = _with_described_constraints(schema)
        if "allOf" in schema:
            schema = self.merge_all(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                return self.either(rest, branches, name, depth)
        kind = self.pick_type(schema, depth)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "string":
            return self.text(name, schema)
        if kind == "integer":
            return self.integer(name, schema)
        if kind == "number":
            return self.number(name, schema)
        if kind == "boolean":
            return self.rng.random() < 0.6
        return None

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < 32:
            target = self.lookup(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = self.merge(rest, target) if rest else target
            seen += 1
        return schema

    def lookup(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            return {}  # remote references are not fetched: any value
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict):
                node = node.get(part, {})
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return {}
        return node if isinstance(node, dict) else {}

    def merge_all(self, schema: Schema) -> Schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged = self.merge(merged, self.resolve(part))
        return merged

    @staticmethod
    def merge(base: Schema, extra: Schema) -> Schema:
        """Both schemas' constraints at once (the tighter bound wins)."""
        merged = dict(base)
        for key, value in extra.items():
            if key not in merged:
                merged[key] = value
            elif key == "properties":
                merged[key] = {**merged[key], **value}
            elif key == "required":
                merged[key] = list(dict.fromkeys([*merged[key], *value]))
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
                merged[key] = max(merged[key], value)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
                merged[key] = min(merged[key], value)
            elif key == "type" and isinstance(value, list | str):
                ours = merged[key] if isinstance(merged[key], list) else [merged[key]]
                theirs = value if isinstance(value, list) else [value]
                both = [t for t in ours if t in theirs] or theirs
                merged[key] = both if len(both) > 1 else both[0]
            else:
                merged[key] = value
        return merged

    def either(self, rest: Schema, branches: list[Any], name: str, depth: int) -> Any:
        """A value of one branch; the others are tried in turn when it is endless."""
        chosen = self.pick_branch(branches, depth)
        order = [chosen, *(b for b in branches if isinstance(b, dict) and b is not chosen)]
        for tried, branch in enumerate(order, 1):
            try:
                return self.value(self.merge(rest, branch) if rest else branch, name, depth)
            except _Endless:
                if tried == len(order):
                    raise
        raise AssertionError("unreachable: `order` holds at least the chosen branch")

    def pick_branch(self, branches: list[Any], depth: int) -> Schema:
        usable = [b for b in branches if isinstance(b, dict)]
        if not usable:
            return {}
        if self.deep(depth):
            simple = [b for b in usable if self.resolve(b).get("type") == "null"]
            if simple:
                return simple[0]
        # Prefer a non-null branch: an all-null answer shows nothing of the content.
        solid = [b for b in usable if self.resolve(b).get("type") != "null"] or usable
        return self.rng.choice(solid)

    def pick_type(self, schema: Schema, depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            options = [k for k in kind if isinstance(k, str)]
            if "null" in options and (self.deep(depth) or len(options) == 1):
                return "null"
            solid = [k for k in options if k != "null"]
            return self.rng.choice(solid) if solid else "null"
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema or "minItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "multipleOf")):
            return "number"
        return "string"

    # -- containers -----------------------------------------------------------------------

    def object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        result: dict[str, Any] = {}
        for key, sub in properties.items():
            if key in required:
                result[key] = self.value(sub, key, depth + 1)
            elif not self.deep(depth) and self.rng.random() < 0.8:
                with contextlib.suppress(_Endless):
                    result[key] = self.value(sub, key, depth + 1)
        extra = schema.get("additionalProperties", True)
        for key in required:
            if key not in result:
                sub = extra if isinstance(extra, dict) else {}
                result[key] = self.value(sub, key, depth + 1)
        minimum = int(schema.get("minProperties", 0))
        if extra is not False:
            sub = extra if isinstance(extra, dict) else {"type": "string"}
            wanted_extra = 0 if properties else self.rng.randint(1, 3)
            while len(result) < minimum or (wanted_extra > 0 and not self.deep(depth)):
                key = f"{self.rng.choice(_WORDS)}_{len(result) + 1}"
                result[key] = self.value(sub, key, depth + 1)
                wanted_extra -= 1
        maximum = schema.get("maxProperties")
        if isinstance(maximum, int) and len(result) > maximum:
            optional = [k for k in result if k not in required]
            for key in optional[: len(result) - maximum]:
                del result[key]
        return result

    def array(self, schema: Schema, name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        prefix = schema.get("prefixItems") or (
            schema["items"] if isinstance(schema.get("items"), list) else []
        )
        items = schema.get("items") if isinstance(schema.get("items"), dict | bool) else {}
        if schema.get("items") is False or (items is True and prefix):
            high = len(prefix) if high is None else min(int(high), len(prefix))
        lean = self.deep(depth)
        # A few items beyond the minimum at most: `maxItems: 1000000000000` bounds the
        # array, it does not ask for it (a random count up to it was unbounded work).
        top = min(int(high), max(low, 3)) if high is not None else max(low, low if lean else 3)
        count = min(low, top) if lean else self.rng.randint(min(low, top), top)
        count = min(max(count, 0 if lean else min(1, top), low), _MAX_ITEMS)
        single = _singular(name)
        unique = bool(schema.get("uniqueItems"))
        result: list[Any] = []
        tries = 0
        while len(result) < count and tries < count * 10 + 10:
            tries += 1
            index = len(result)
            sub = prefix[index] if index < len(prefix) else items
            # Named values come from small pools; repeated clashes fall back to unnamed ones.
            hint = single if tries <= count * 2 else ""
            try:
                value = self.value(sub if sub is not None else {}, hint, depth + 1)
            except _Endless:
                if index < low:
                    raise
                break  # items past the minimum are optional
            if unique and value in result:
                continue
            result.append(value)
        return result

    # -- scalars --------------------------------------------------------------------------

    def integer(self, name: str, schema: Schema) -> int:
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        guess = _number_for(name, self.rng)
        value = round(guess) if guess is not None else self.rng.randint(1, 100)
        value = int(min(max(value, low), high)) if low <= high else int(low)
        if isinstance(step, int | float) and step > 0:
            value = int(math.ceil(value / step) * step)
            if value > high:
                value = int(math.floor(high / step) * step)
        return value

    def number(self, name: str, schema: Schema) -> float | int:
        low, high = _bounds(schema, integer=False)
        step = schema.get("multipleOf")
        guess = _number_for(name, self.rng)
        value = guess if guess is not None else round(self.rng.uniform(1, 100), 2)
        if not low <= value <= high:
            value = round(self.rng.uniform(low, high), 2) if high - low > 0.02 else low
            value = min(max(value, low), high)
        if isinstance(step, int | float) and step > 0:
            value = math.ceil(value / step) * step
            if value > high:
                value = math.floor(high / step) * step
            value = round(value, 10)
        return value

    def text(self, name: str, schema: Schema) -> str:
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        fmt = schema.get("format")
        pattern = schema.get("pattern")
        value: str | None = None
        if isinstance(fmt, str):
            value = _formatted(fmt, self.rng)
        if value is None and isinstance(pattern, str):
            value = _from_pattern(pattern, self.rng)
        if value is None:
            value = scrub(_text_for(name, self.rng, self.hints), self.hints.avoid).strip()
        return _fit_length(value, low, int(high) if high is not None else None, self.rng)


#: Constraints a strict-schema SDK moved into the description (Anthropic's `transform_schema`
#: writes "{minLength: 3, maximum: 10}"); a real model reads them, so the mock does too.
_DESCRIBED = re.compile(r"\{(\w+: [^{}]+)\}\s*$")
_DESCRIBABLE = {
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "multipleOf",
    "pattern",
    "format",
    "uniqueItems",
}


def _with_described_constraints(schema: Schema) -> Schema:
    description = schema.get("description")
    match = _DESCRIBED.search(description) if isinstance(description, str) else None
    if match is None:
        return schema
    found: Schema = {}
    for part in match.group(1).split(", "):
        key, _, raw = part.partition(": ")
        if key not in _DESCRIBABLE or key in schema:
            continue
        try:
            found[key] = json.loads(raw.replace("True", "true").replace("False", "false"))
        except ValueError:
            found[key] = raw
    return {**schema, **found} if found else schema


def _bounds(schema: Schema, integer: bool) -> tuple[float, float]:
    """Inclusive bounds from minimum/maximum and their exclusive forms (draft 4 and later)."""
    tiny = 1 if integer else 0.01
    low, high = -math.inf, math.inf
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") is True:  # draft 4 boolean form
            low += tiny
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") is True:
            high -= tiny
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        low = max(low, exclusive_low + tiny)
    if isinstance(exclusive_high, int | float) and not isinstance(exclusive_high, bool):
        high = min(high, exclusive_high - tiny)
    if integer:
        low = math.ceil(low) if low != -math.inf else -1_000_000
        high = math.floor(high) if high != math.inf else 1_000_000
    else:
        low = low if low != -math.inf else -1_000_000.0
        high = high if high != math.inf else 1_000_000.0
    if low > high and not integer and high - low > -tiny:  # a very narrow open interval
        low = high = (low + high) / 2
    return low, high


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w}


def _number_for(name: str, rng: random.Random) -> float | None:
    words = _words(name)
    if words & {"price", "cost", "amount", "budget", "revenue", "spend", "usd", "total"}:
        return round(rng.choice([19, 29, 49, 99, 149, 299]) + 0.99 * rng.random(), 2)
    if words & {"rating", "stars"}:
        return round(rng.uniform(3.8, 5.0), 1)
    if words & {"score", "confidence", "probability", "ratio", "weight", "similarity"}:
        return round(rng.uniform(0.6, 0.98), 2)
    if words & {"percent", "percentage", "pct", "discount", "rate", "ctr"}:
        return rng.choice([5, 10, 15, 20, 25, 30])
    if words & {"year"}:
        return rng.randint(2020, 2027)
    if words & {"age"}:
        return rng.randint(21, 64)
    if words & {"day", "days", "week", "weeks", "month", "duration", "order", "step", "rank"}:
        return rng.randint(1, 12)
    if words & {"count", "quantity", "number", "num", "size", "length", "words", "characters"}:
        return rng.randint(1, 50)
    return None


#: Limits a field's name implies when its schema sets none (email subject, X post).
_NAMED_LIMITS = (
    ({"subject"}, LIMITS["email_subject"]),
    ({"tweet"}, LIMITS["x"]),
    ({"preheader"}, LIMITS["email_preheader"]),
)


def _text_for(name: str, rng: random.Random, hints: Hints) -> str:
    """A string that reads like the field it fills (and fits the limit its name implies)."""
    text = _plain_text_for(name, rng, hints)
    words = _words(name)
    for names, limit in _NAMED_LIMITS:
        if words & names and len(text) > limit:
            text = text[:limit].rsplit(" ", 1)[0]
    return text


def _plain_text_for(name: str, rng: random.Random, hints: Hints) -> str:
    words = _words(name)
    adjective = rng.choice(_WORDS)
    noun = hints.topic or rng.choice(_NOUNS)
    person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if words & {"email", "mail"}:
        return f"{rng.choice(_FIRST).lower()}.{rng.choice(_LAST).lower()}@example.com"
    if words & {"url", "uri", "link", "website", "href", "homepage", "image", "src"}:
        return f"https://example.com/{adjective}-{re.sub(r'[^a-z0-9]+', '-', noun.lower())}"
    if words & {"phone", "tel", "mobile"}:
        return f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    if words & {"uuid", "guid"}:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if words & {"id", "sku", "code", "key", "slug", "handle"}:
        return f"{adjective}-{rng.choice(_NOUNS)}-{rng.randint(100, 999)}"
    if "date" in words or "deadline" in words:
        return _formatted("date", rng) or "2026-01-01"
    if words & {"time", "timestamp", "at"}:
        return _formatted("date-time", rng) or "2026-01-01T09:00:00Z"
    if words & {"hashtag", "hashtags", "tag", "tags", "keyword", "keywords"}:
        source = rng.choice(hints.keywords) if hints.keywords else f"{adjective} {noun}"
        return "#" + re.sub(r"[^A-Za-z0-9]", "", source.title())
    if words & {"color", "colour"}:
        return rng.choice(_COLORS)
    if words & {"cta", "action", "button"}:
        return rng.choice(_CTAS)
    if words & {"channel", "platform", "medium"}:
        return rng.choice(_CHANNELS)
    if words & {"tone", "voice", "mood", "style", "sentiment"}:
        return rng.choice(_TONES)
    if words & {"city"}:
        return rng.choice(_CITIES)
    if words & {"country"}:
        return rng.choice(_COUNTRIES)
    if words & {"company", "brand", "organization", "organisation", "vendor"}:
        return hints.brand or rng.choice(_COMPANIES)
    if words & {"author", "person", "customer", "owner", "user", "contact"} or name == "name":
        return person
    if words & {"first"}:
        return rng.choice(_FIRST)
    if words & {"last", "surname"}:
        return rng.choice(_LAST)
    if words & {"subject"}:
        return f"Your {adjective} {noun} is here"
    if words & {"headline", "title", "heading", "name", "tagline", "slogan", "label", "hook"}:
        return f"{adjective.capitalize()} {noun} for every day"
    if words & {"preheader", "subtitle", "subheadline", "summary", "caption", "teaser"}:
        return f"Discover the {adjective} {noun} made for you."
    if words & {"language", "locale", "lang"}:
        return rng.choice(["en", "en-US", "de", "fr", "es"])
    if words & {"currency"}:
        return rng.choice(["USD", "EUR", "GBP"])
    if words & {"status", "state", "type", "kind", "category", "level", "priority"}:
        return rng.choice(["active", "draft", "primary", "standard"])
    if words & {"body", "content", "description", "text", "copy", "message", "details", "bio"}:
        about = f"Meet the {adjective} {noun}" + (f" from {hints.brand}." if hints.brand else ".")
        extra = f" Think {', '.join(hints.keywords)}." if hints.keywords else ""
        return about + extra + " " + rng.choice(_SENTENCES)
    if words & {"reason", "rationale", "explanation", "notes", "note", "feedback", "comment"}:
        return rng.choice(_SENTENCES)
    return f"{adjective} {noun}"


def _formatted(fmt: str, rng: random.Random) -> str | None:
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        days=rng.randint(0, 364), minutes=rng.randint(0, 24 * 60 - 1)
    )
    if fmt == "date":
        return moment.date().isoformat()
    if fmt == "date-time":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "time":
        return moment.strftime("%H:%M:%SZ")
    if fmt == "email" or fmt == "idn-email":
        return f"{rng.choice(_FIRST).lower()}@example.com"
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return f"https://example.com/{rng.choice(_NOUNS)}"
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt in ("hostname", "idn-hostname"):
        return f"{rng.choice(_NOUNS)}.example.com"
    if fmt == "ipv4":
        return f"192.0.2.{rng.randint(1, 254)}"
    if fmt == "ipv6":
        return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    if fmt == "duration":
        return f"P{rng.randint(1, 30)}D"
    return None


def _fit_length(value: str, low: int, high: int | None, rng: random.Random) -> str:
    low = min(low, _MAX_TEXT)
    if high is not None and len(value) > high:
        cut = value[:high]
        space = cut.rfind(" ")
        value = cut[:space] if space >= max(low, 1) else cut
    words = [value] if value else []
    size = len(value)
    while size < low:
        words.append(rng.choice(_WORDS))
        size += len(words[-1]) + 1
    value = " ".join(words)
    if high is not None and len(value) > high:
        value = value[:high]
    return value


# -- patterns --------------------------------------------------------------------------------

_MAX_REPEAT = 6


def _from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching `pattern` (searched, as JSON Schema does), or None if we can't."""
    try:
        parsed = sre_parse.parse(pattern)
        value = _emit(parsed, rng, {})
    except (re.error, ValueError, IndexError, _Unsupported):
        return None
    try:
        return value if re.search(pattern, value) else None
    except re.error:
        return None


class _Unsupported(Exception):
    """A regex feature the pattern generator does not cover (lookarounds, backrefs)."""


_CATEGORY_CHARS = {
    sre_constants.CATEGORY_DIGIT: string.digits,
    sre_constants.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre_constants.CATEGORY_SPACE: " ",
    sre_constants.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
    sre_constants.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_constants.CATEGORY_NOT_WORD: "-. ",
}
_PRINTABLE = string.ascii_letters + string.digits + " -_."


def _emit(parsed: Any, rng: random.Random, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.NOT_LITERAL:
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != arg]))
        elif op is sre_constants.ANY:
            out.append(rng.choice(string.ascii_letters))
        elif op is sre_constants.IN:
            out.append(_one_of(arg, rng))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, sub = arg
            top = (
                min(high, max(low, _MAX_REPEAT))
                if high != sre_constants.MAXREPEAT
                else max(low, _MAX_REPEAT)
            )
            count = rng.randint(low, max(low, min(top, low + 4)))
            out.extend(_emit(sub, rng, groups) for _ in range(count))
        elif op is sre_constants.SUBPATTERN:
            group, _add, _del, sub = arg
            text = _emit(sub, rng, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op is sre_constants.BRANCH:
            out.append(_emit(rng.choice(arg[1]), rng, groups))
        elif op is sre_constants.AT:
            continue
        elif op is sre_constants.GROUPREF:
            out.append(groups.get(arg, ""))
        else:
            raise _Unsupported(str(op))
    return "".join(out)


def _one_of(items: Any, rng: random.Random) -> str:
    allowed: list[str] = []
    negate = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            allowed.append(chr(arg))
        elif op is sre_constants.RANGE:
            low, high = arg
            allowed.extend(chr(c) for c in range(low, min(high, low + 200) + 1))
        elif op is sre_constants.CATEGORY:
            allowed.extend(_CATEGORY_CHARS.get(arg, ""))
        else:
            raise _Unsupported(str(op))
    if negate:
        choices = [c for c in _PRINTABLE if c not in allowed]
        return rng.choice(choices or ["~"])
    if not allowed:
        raise _Unsupported("empty class")
    return rng.choice(allowed)


#: Gemini's OpenAPI-subset keywords that carry over to JSON Schema under the same name.
_OPENAPI_KEEP = (
    "format",
    "description",
    "title",
    "enum",
    "pattern",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)


def from_openapi(schema: Any) -> Schema:
    """Gemini's `responseSchema` (OpenAPI subset, `"type": "OBJECT"`, `nullable`) as JSON Schema.

    The google-genai SDK sends numbers such as `minItems` as int64 strings; they are
    read back as numbers here.
    """
    if not isinstance(schema, dict):
        return {}
    # The REST API takes proto JSON, so snake_case (`max_length`, as the SDK sends nested
    # schemas) is as valid as camelCase.
    schema = {_camel(k): v for k, v in schema.items()}
    out: Schema = {}
    kind = schema.get("type")
    if isinstance(kind, str) and kind.upper() != "TYPE_UNSPECIFIED":
        out["type"] = kind.lower()
    for key in _OPENAPI_KEEP:
        if key in schema:
            value = schema[key]
            if key.startswith(("min", "max")) and isinstance(value, str):
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError:  # found by the fuzz suite: was a 500
                    raise BadRequest(f"responseSchema '{key}' must be a number") from None
            out[key] = value
    if out.get("format") == "enum":
        del out["format"]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: from_openapi(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("required"), list):
        out["required"] = schema["required"]
    if "items" in schema:
        out["items"] = from_openapi(schema["items"])
    if isinstance(schema.get("anyOf"), list):
        out["anyOf"] = [from_openapi(s) for s in schema["anyOf"]]
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)
