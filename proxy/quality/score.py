"""The rule-based quality score of one answer: the rubric, in one place.

Every answer of either arm is scored once complete, from what the request asked
(`Expectations`: task, brand, JSON schema, tools, max tokens) and what came back
(`Finished`). Deterministic: the same request and answer give the same result.

Rejections (hard failures; the answer is unusable, its score is 0):

| reason                   | when                                                           |
|--------------------------|----------------------------------------------------------------|
| `empty`                  | no text and no tool call                                       |
| `refusal`                | the provider refused (OpenAI `refusal`, `content_filter`,      |
|                          | Anthropic `stop_reason: refusal`, Gemini safety/blocked) or the|
|                          | text opens with refusal phrasing ("I'm sorry, but I can't ...")|
| `truncated`              | cut at the token limit although the app did not ask for a      |
|                          | short answer (max tokens > `SHORT_ANSWER_TOKENS`, or unset)    |
| `invalid_json`           | a JSON answer was asked for and the text is not a JSON value   |
| `schema_mismatch`        | the JSON does not validate against the request's schema        |
| `unknown_tool`           | a tool call names a tool the request did not offer             |
| `invalid_tool_arguments` | a tool call's arguments are not JSON or fail its schema        |
| `avoided_word`           | a word of the brand's avoid list is in the text or arguments   |

Deductions from 5.0 (free-text answers whose task is known; JSON and tool answers
are held to their schema instead), the total clamped to 0-5:

| check                        | weight | rule (table: `proxy.marketing`)                   |
|------------------------------|--------|---------------------------------------------------|
| a structure part missing     | -1.0   | `STRUCTURES[task]` (subject, CTA, sections, ...)  |
| a field over its limit       | -1.5   | `FIELD_LIMITS`: email subject 78, preheader 100,  |
|                              |        | ad headline 30/40, description 90/125             |
| a post over its platform     | -1.5   | `LIMITS`: X 280, Threads 500, Instagram/TikTok    |
|                              |        | 2,200, LinkedIn 3,000 (platform named in prompt)  |
| too many hashtags            | -1.0   | `HASHTAG_LIMITS`: Instagram/TikTok 30             |
| brand name missing           | -0.5   | `BRAND_NAME_TASKS`, when a brand name is known    |
| no brand keyword             | -0.5   | `BRAND_KEYWORD_TASKS`, when keywords are known    |
| a broken phrase, per rule    | -0.5   | `proxy.quality.readable`: "the our", "Meet the    |
|                              |        | smart our latest", "about Use get price tool"     |

Structure and limit deductions are capped at -3.0 each, broken phrases at -1.5. Brand compliance (a
known brand only): no avoided word and neither brand deduction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.dialects import ParsedRequest
from proxy.marketing import (
    BRAND_KEYWORD_TASKS,
    BRAND_NAME_TASKS,
    FIELD_LIMITS,
    HASHTAG_LIMITS,
    LIMITS,
    STRUCTURES,
    Brand,
    avoided_pattern,
    brand_from_header,
    brand_from_system,
    limit_of,
    normalise_task,
    platform_of,
    recognise_task,
    system_text,
)
from proxy.mock.prompts import PROMPTS
from proxy.mock.schema import Schema, validator_of
from proxy.mock.structured import offered_tools, wanted
from proxy.quality.finished import Finished
from proxy.quality.readable import problems

#: An app that caps the answer at this many tokens or fewer asked for a short answer:
#: a cut at that limit is what it asked for, not a failure.
SHORT_ANSWER_TOKENS = 256

MISSING_PART = 1.0
OVER_LIMIT = 1.5
TOO_MANY_HASHTAGS = 1.0
NO_BRAND_NAME = 0.5
NO_BRAND_KEYWORD = 0.5
BROKEN_PHRASE = 0.5
CAP = 3.0
BROKEN_PHRASES_CAP = 1.5

REASONS = (
    "empty",
    "refusal",
    "truncated",
    "invalid_json",
    "schema_mismatch",
    "unknown_tool",
    "invalid_tool_arguments",
    "avoided_word",
)

_REFUSAL = re.compile(
    r"^\W*(?:(?:I'?m|I am) sorry,?\s+(?:but\s+)?I\s+"
    r"(?:can(?:no|['\u2019])t|am unable|won['\u2019]?t)"
    r"|I\s+(?:can(?:no|['\u2019])t|am unable to|won['\u2019]?t|must decline to)\s+"
    r"(?:help|assist|comply|provide|create|write|do|fulfil)"
    r"|As an AI(?: language model)?,? I (?:can(?:no|['\u2019])t|am unable))",
    re.IGNORECASE,
)
#: Tasks whose limits depend on the platform the prompt names.
_PLATFORM_TASKS = frozenset({"social_media_post", "ad_copy"})
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    schema: Schema


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the request asked of its answer."""

    task: str | None = None
    brand: Brand | None = None
    platform: str | None = None
    #: A JSON answer was asked for; `schema` None means any JSON value.
    json: bool = False
    schema: Schema | None = None
    tools: tuple[Tool, ...] = ()
    max_tokens: int | None = None
    #: The JSON the request prefilled the answer with (Anthropic): the answer's text
    #: continues it, and the two together are what must parse.
    prefill: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    score: float
    rejections: tuple[str, ...] = ()
    #: The task label for metrics: the task, or "none" when it is not known.
    task: str = "none"
    #: None when no brand is known; else whether the answer kept to it.
    brand_compliant: bool | None = None
    #: The checks that cost points, e.g. "missing:subject", "over_limit:x".
    deductions: tuple[str, ...] = field(default=())
    clipped: bool = False


def expectations(dialect: str, request: ParsedRequest, headers: Mapping[str, str]) -> Expectations:
    """Read what the answer should be from the request, as the mock reads it."""
    read_prompt = PROMPTS[dialect]
    prompt = read_prompt(request.payload)
    task = normalise_task(headers.get("x-llm-task")) or recognise_task(prompt)
    brand = brand_from_header(headers.get("x-brand-context")) or brand_from_system(
        system_text(request.payload)
    )
    shape = wanted(dialect, request.payload, prompt)
    tools = tuple(Tool(t.name, t.schema) for t in offered_tools(dialect, request.payload))
    is_json = shape is not None and shape.kind == "json"
    return Expectations(
        task=task,
        brand=brand,
        platform=platform_of(prompt) if task in _PLATFORM_TASKS else None,
        json=is_json,
        schema=shape.schema if is_json and shape is not None else None,
        tools=tools,
        max_tokens=request.max_tokens,
        prefill=shape.prefill if is_json and shape is not None else "",
    )


def score(expect: Expectations, answer: Finished) -> Result:
    """Score `answer` against what was asked: rejections first, then the task's checks."""
    rejections = _rejections(expect, answer)
    deductions: list[tuple[str, float]] = []
    free_text = not expect.json and not answer.calls
    if expect.task and free_text and not rejections:
        deductions += _task_checks(expect.task, expect.platform, answer.text)
    if free_text and not rejections:
        broken = [(f"broken_phrase:{rule}", BROKEN_PHRASE) for rule in problems(answer.text)]
        deductions += _capped(broken, BROKEN_PHRASES_CAP)
    brand_misses = _brand_checks(expect, answer.text) if free_text and not rejections else []
    deductions += brand_misses
    total = 0.0 if rejections else 5.0 - sum(points for _, points in deductions)
    compliant = None
    if expect.brand is not None:
        compliant = "avoided_word" not in rejections and not brand_misses
    return Result(
        score=round(max(0.0, min(5.0, total)), 2),
        rejections=tuple(rejections),
        task=expect.task or "none",
        brand_compliant=compliant,
        deductions=tuple(name for name, _ in deductions),
        clipped=answer.clipped,
    )


def _rejections(expect: Expectations, answer: Finished) -> list[str]:
    text = answer.text.strip()
    if not text and not answer.calls:
        return ["refusal"] if answer.refused else ["empty"]
    found: list[str] = []
    if answer.refused or answer.finish == "refusal" or _REFUSAL.search(text[:300]):
        found.append("refusal")
    short = expect.max_tokens is not None and expect.max_tokens <= SHORT_ANSWER_TOKENS
    if answer.finish == "length" and not short:
        found.append("truncated")
    if expect.json and text and not answer.calls and "truncated" not in found:
        found += _json_check(expect.prefill.strip() + text, expect.schema)
    found += _tool_checks(expect.tools, answer)
    if expect.brand is not None and _avoided(expect.brand, answer):
        found.append("avoided_word")
    return list(dict.fromkeys(found))


def _json_check(text: str, schema: Schema | None) -> list[str]:
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return ["invalid_json"]
    return ["schema_mismatch"] if schema is not None and not _valid(schema, value) else []


def _valid(schema: Schema, value: Any) -> bool:
    validator = validator_of(schema)
    return validator is None or bool(validator.is_valid(value))


def _tool_checks(tools: tuple[Tool, ...], answer: Finished) -> list[str]:
    by_name = {t.name: t for t in tools}
    found: list[str] = []
    for call in answer.calls:
        tool = by_name.get(call.name)
        if tool is None:
            found.append("unknown_tool")
            continue
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            found.append("invalid_tool_arguments")
            continue
        if not isinstance(arguments, dict) or not _valid(tool.schema, arguments):
            found.append("invalid_tool_arguments")
    return found


def _avoided(brand: Brand, answer: Finished) -> bool:
    texts = [answer.text, *(c.arguments for c in answer.calls)]
    return any(avoided_pattern(word).search(t) for word in brand.avoid for t in texts)


def _task_checks(task: str, platform: str | None, text: str) -> list[tuple[str, float]]:
    missing = [
        (f"missing:{part.name}", MISSING_PART)
        for part in STRUCTURES.get(task, ())
        if len(part.pattern.findall(text)) < part.count
    ]
    over: list[tuple[str, float]] = []
    for field_task, label, key in FIELD_LIMITS:
        if field_task != task:
            continue
        limit = limit_of(key, platform)
        line = re.compile(rf"^[ \t>*_-]*{label}[*_]*\s*:[*_]*\s*(.+?)\s*$", re.I | re.M)
        if any(len(value) > limit for value in line.findall(text)):
            over.append((f"over_limit:{key}", OVER_LIMIT))
    if task == "social_media_post" and platform in LIMITS and len(text.strip()) > LIMITS[platform]:
        over.append((f"over_limit:{platform}", OVER_LIMIT))
    hashtags: list[tuple[str, float]] = []
    cap = HASHTAG_LIMITS.get(platform or "")
    if task == "social_media_post" and cap is not None and len(_HASHTAG.findall(text)) > cap:
        hashtags.append(("too_many_hashtags", TOO_MANY_HASHTAGS))
    return _capped(missing) + _capped(over) + hashtags


def _capped(found: list[tuple[str, float]], cap: float = CAP) -> list[tuple[str, float]]:
    """The deductions, the last one trimmed so together they cost at most `cap`."""
    kept: list[tuple[str, float]] = []
    spent = 0.0
    for name, points in found:
        points = min(points, cap - spent)
        spent += points
        kept.append((name, points))
    return kept


def _brand_checks(expect: Expectations, text: str) -> list[tuple[str, float]]:
    brand, task = expect.brand, expect.task
    if brand is None or task is None:
        return []
    lowered = text.lower()
    misses: list[tuple[str, float]] = []
    if brand.name and task in BRAND_NAME_TASKS and brand.name.lower() not in lowered:
        misses.append(("brand_name", NO_BRAND_NAME))
    keywords = [k for k in brand.keywords if k.lower() not in {a.lower() for a in brand.avoid}]
    if keywords and task in BRAND_KEYWORD_TASKS and not any(k.lower() in lowered for k in keywords):
        misses.append(("brand_keyword", NO_BRAND_KEYWORD))
    return misses
