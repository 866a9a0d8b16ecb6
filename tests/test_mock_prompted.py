"""Reading JSON asked for in a prompt (`proxy.mock.prompted`), and answering it, without sockets."""

from __future__ import annotations

import json
import random
import time

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config.model import MockSpec
from proxy.mock.answer import answer
from proxy.mock.prompted import MAX_SCAN, continuation, prompt_schema, prompted
from proxy.mock.schema import generate
from proxy.quality import from_body, score
from proxy.quality.score import expectations
from tests.test_quality import request
from tests.test_sdk_prompted import (
    Post,
    instructor_json,
    langchain_format_instructions,
    pydantic_ai_prompted,
)

POST_SCHEMA = Post.model_json_schema()


@pytest.mark.parametrize(
    "system",
    [instructor_json(Post), pydantic_ai_prompted(Post), langchain_format_instructions(Post)],
    ids=["instructor", "pydantic-ai", "langchain"],
)
def test_each_library_prompt_yields_its_schema(system: str) -> None:
    found = prompted(system, "Write a LinkedIn post about our cold brew")
    assert found is not None
    assert found.schema is not None
    assert found.schema["properties"] == POST_SCHEMA["properties"]
    assert found.schema["required"] == POST_SCHEMA["required"]


def test_langchain_example_schema_is_not_taken_for_the_real_one() -> None:
    found = prompt_schema(langchain_format_instructions(Post))
    assert found is not None
    assert "foo" not in found.get("properties", {})


def test_fenced_schema_after_a_phrase() -> None:
    text = (
        'Return JSON matching this schema:\n```json\n{"type": "object", "properties": '
        '{"city": {"type": "string"}}, "required": ["city"]}\n```'
    )
    found = prompted("", text)
    assert found is not None
    assert found.schema == json.loads(text.split("```json\n")[1].split("\n```")[0])


def test_field_listing_becomes_a_schema() -> None:
    found = prompted(
        "Reply in JSON.\nclass Ad(BaseModel):\n    headline: str\n    tags: list[str]\n"
        "    clicks: int\n    score: float\n    live: bool\n    note: Optional[str] = None",
        "An ad for a lamp",
    )
    assert found is not None
    assert found.schema == {
        "type": "object",
        "properties": {
            "headline": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "clicks": {"type": "integer"},
            "score": {"type": "number"},
            "live": {"type": "boolean"},
            "note": {"type": "string"},
        },
        "required": ["headline", "tags", "clicks", "score", "live"],
    }


def test_example_object_gives_its_keys() -> None:
    found = prompted("", 'Answer only with JSON like {"headline": "...", "likes": 3}')
    assert found is not None
    assert found.schema is not None
    assert found.schema["required"] == ["headline", "likes"]
    assert found.schema["properties"]["likes"] == {"type": "integer"}


@pytest.mark.parametrize(
    "prompt",
    [
        "Respond only with JSON.",
        "Return the plan as JSON",
        "Output valid JSON, nothing else",
        "JSON only please",
    ],
)
def test_words_that_ask_for_json(prompt: str) -> None:
    assert prompted("", f"Write an email about our sale. {prompt}") is not None


@pytest.mark.parametrize(
    "prompt",
    [
        "Write a blog post about JSON and YAML",
        "Write a LinkedIn post about our cold brew",
        # a schema shown but not asked for as JSON (a prompt about schemas)
        'Explain this schema to a beginner: {"type": "object", "properties": {}}',
    ],
)
def test_prose_requests_stay_prose(prompt: str) -> None:
    assert prompted("", prompt) is None


def test_prefill_asks_for_json_and_is_continued() -> None:
    found = prompted("", "Write a tweet", prefill="{")
    assert found is not None
    assert found.prefill == "{"
    assert prompted("", "Write a tweet", prefill="Sure! Here") is None
    assert continuation('{"a":1}', "{") == '"a":1}'
    assert continuation('{"a":1}', "") == '{"a":1}'
    assert continuation('{"a":1}', "[") == '{"a":1}'


@pytest.mark.parametrize(
    "schema",
    [
        '{"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}}',
        '{"type": "array", "minItems": 100000000}',
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}',
        '{"type": "object", "required": ["a"], "properties": {"a": {"type": "string", '
        '"minLength": 9, "maxLength": 2}}}',
    ],
)
def test_unanswerable_prompt_schemas_are_dropped(schema: str) -> None:
    found = prompted("", f"Return JSON matching this schema: {schema}")
    assert found is not None
    assert found.schema is None  # a plain object is written instead


@pytest.mark.parametrize(
    "hostile",
    [
        "{" * MAX_SCAN,
        '{"a": "' * 40_000,
        "[" * 100_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        "{}" * 100_000,
    ],
    ids=["braces", "open-strings", "brackets", "deep", "many-empty"],
)
def test_hostile_prompts_cost_bounded_time(hostile: str) -> None:
    started = time.perf_counter()
    prompted(hostile, "Respond only with JSON. " + hostile)
    assert time.perf_counter() - started < 2.0  # generous: shared machines


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=400), json_word=st.booleans())
def test_any_prompt_reads_without_error(text: str, json_word: bool) -> None:
    found = prompted("", text + (" respond with json" if json_word else ""))
    if found is not None and found.schema is not None:
        generate(found.schema, random.Random(0))


@pytest.mark.parametrize(
    "dialect", ["openai.chat", "anthropic.messages", "openai.responses", "gemini.generate_content"]
)
@pytest.mark.parametrize("stream", [False, True])
def test_mock_answers_the_prompt_schema_and_the_scorer_agrees(dialect: str, stream: bool) -> None:
    parsed = request(dialect, "Write a LinkedIn post about our cold brew", instructor_json(Post),
                     stream)  # fmt: skip
    mock = answer(dialect, parsed, MockSpec(seed=4))
    expect = expectations(dialect, parsed, {})
    assert expect.json
    assert expect.schema is not None
    if not stream:
        finished = from_body(dialect, mock.body)
        jsonschema.validate(json.loads(finished.text), POST_SCHEMA)
        assert score(expect, finished).score == 5.0


def test_scorer_holds_a_prompted_answer_to_the_prompt_schema() -> None:
    parsed = request("openai.chat", "Write a LinkedIn post", instructor_json(Post))
    expect = expectations("openai.chat", parsed, {})
    wrong = from_body(
        "openai.chat",
        json.dumps(
            {"choices": [{"message": {"content": '{"title": "x"}'}, "finish_reason": "stop"}]}
        ).encode(),
    )
    assert score(expect, wrong).rejections == ("schema_mismatch",)


def test_scorer_joins_an_anthropic_prefill_to_the_answer() -> None:
    parsed = request(
        "anthropic.messages",
        "Write a tweet. Respond only with JSON.",
        extra={
            "messages": [
                {"role": "user", "content": "Write a tweet. Respond only with JSON."},
                {"role": "assistant", "content": "{"},
            ]
        },
    )
    mock = answer("anthropic.messages", parsed, MockSpec(seed=1))
    finished = from_body("anthropic.messages", mock.body)
    assert not finished.text.startswith("{")
    assert json.loads("{" + finished.text)
    assert score(expectations("anthropic.messages", parsed, {}), finished).rejections == ()


def test_prompted_answers_are_deterministic_per_seed() -> None:
    parsed = request("openai.chat", "Write a LinkedIn post about our cold brew",
                     instructor_json(Post))  # fmt: skip
    first = [answer("openai.chat", parsed, MockSpec(seed=s)).body for s in (1, 2)]
    again = [answer("openai.chat", parsed, MockSpec(seed=s)).body for s in (1, 2)]
    contents = [json.loads(body)["choices"][0]["message"]["content"] for body in first]
    assert [json.loads(b)["choices"][0]["message"]["content"] for b in again] == contents
    assert contents[0] != contents[1]
