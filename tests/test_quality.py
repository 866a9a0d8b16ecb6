"""The quality scorer: every rejection reason and task check on known answers, the
dialect readers on whole bodies and streams, and agreement with the mock (its
answers, for every task and brand, score >= 4.5 with no rejection)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config.model import MockSpec
from proxy.dialects import ROUTES, ParsedRequest
from proxy.marketing import TASKS, Brand
from proxy.mock.answer import answer
from proxy.mock.content import MockContext
from proxy.quality import (
    MAX_TEXT_CHARS,
    Expectations,
    Finished,
    SeenCall,
    expectations,
    from_body,
    score,
)
from proxy.quality.score import Tool
from proxy.server.quality import answer_of

BY_NAME = {d.name: d for _, d in ROUTES}
DIALECTS = ("openai.chat", "anthropic.messages", "openai.responses", "gemini.generate_content")
PROMPTS = {
    "social_media_post": "Write a LinkedIn post announcing our new cold brew",
    "email": "Write an email for the summer sale on cold brew",
    "ad_copy": "Write Google Ads copy for our cold brew",
    "landing_page": "Create a landing page for our subscription box",
    "campaign_plan": "Plan a campaign for the autumn blend launch",
    "blog_post": "Write a blog post about brewing coffee at home",
    "product_description": "Write a product description for a ceramic pour-over",
    "content_variations": "Give me 3 variations of a headline for our espresso",
    "brand_voice_analysis": "Analyze the brand voice of our homepage copy",
}
BRAND = Brand("Northwind Coffee", ("warm",), "busy parents", ("fair trade",), ("cheap",))


def request(dialect: str, prompt: str, system: str = "", stream: bool = False,
            extra: dict[str, object] | None = None) -> ParsedRequest:  # fmt: skip
    """A request in `dialect`'s own shape, parsed as the sidecar parses it."""
    if dialect == "openai.chat":
        turns = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        payload: dict[str, object] = {"model": "gpt-4o-mini", "stream": stream, "messages": turns}
    elif dialect == "anthropic.messages":
        payload = {"model": "claude-sonnet-5", "max_tokens": 4096, "system": system,
                   "stream": stream, "messages": [{"role": "user", "content": prompt}]}  # fmt: skip
    elif dialect == "openai.responses":
        payload = {"model": "gpt-4o-mini", "instructions": system, "input": prompt,
                   "stream": stream}  # fmt: skip
    else:
        payload = {"systemInstruction": {"parts": [{"text": system}]},
                   "contents": [{"role": "user", "parts": [{"text": prompt}]}]}  # fmt: skip
    payload |= extra or {}
    gemini = dialect == "gemini.generate_content"
    return BY_NAME[dialect].parse(
        json.dumps(payload).encode(),
        path_model="gemini-2.5-flash" if gemini else None,
        query_stream=stream and gemini,
    )


# -- agreement with the mock ------------------------------------------------------------------

_WORDS = st.sampled_from(
    ["sunrise", "harbor", "velvet", "summit", "orchid", "granite", "meadow", "copper"]
)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    dialect=st.sampled_from(DIALECTS),
    task=st.sampled_from(TASKS),
    stream=st.booleans(),
    name=st.sampled_from(["Northwind Coffee", "Acme", "Blue Fern Studio", ""]),
    words=st.lists(_WORDS, min_size=0, max_size=5, unique=True),
    platform=st.sampled_from(["", " for X", " for Instagram", " for Threads", " on Meta ads"]),
    by_header=st.booleans(),
)
def test_every_mock_answer_scores_high(
    seed: int, dialect: str, task: str, stream: bool, name: str, words: list[str],
    platform: str, by_header: bool,
) -> None:  # fmt: skip
    keywords, avoid = words[: len(words) // 2], words[len(words) // 2 :]
    brand = {"name": name, "voice": ["warm"], "keywords": keywords, "avoid": avoid}
    headers = {"x-llm-task": task}
    system = ""
    if by_header:
        headers["x-brand-context"] = json.dumps(brand)
    else:
        system = "\n".join(
            f"{label}: {', '.join(v) if isinstance(v, list) else v}"
            for label, v in (("Brand", name), ("Voice", ["warm"]), ("Keywords", keywords),
                             ("Avoid", avoid)) if v
        )  # fmt: skip
    parsed = request(dialect, PROMPTS[task] + platform, system, stream)
    mock = answer(dialect, parsed, MockSpec(seed=seed), MockContext.from_headers(headers))
    finished = answer_of(dialect, b"".join(mock.events) if stream else mock.body, stream)
    assert finished is not None
    result = score(expectations(dialect, parsed, headers), finished)
    assert result.rejections == ()
    assert result.score >= 4.5, (result, finished.text)
    assert result.task == task
    if brand != {"name": "", "voice": ["warm"], "keywords": [], "avoid": []}:
        assert result.brand_compliant is True


def test_mock_json_and_tool_answers_score_high() -> None:
    schema = {"type": "object", "properties": {"subject": {"type": "string"},
              "body": {"type": "string"}}, "required": ["subject", "body"],
              "additionalProperties": False}  # fmt: skip
    tools = [
        {
            "type": "function",
            "function": {
                "name": "save_post",
                "parameters": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
            },
        }
    ]
    for extra in (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "e", "schema": schema},
            }
        },
        {"tools": tools, "tool_choice": "required"},
    ):
        parsed = request("openai.chat", PROMPTS["email"], extra=extra)
        mock = answer("openai.chat", parsed, MockSpec(seed=3))
        result = score(expectations("openai.chat", parsed, {}), from_body("openai.chat", mock.body))
        assert (result.rejections, result.score) == ((), 5.0)


# -- rejections -------------------------------------------------------------------------------


def rejected(expect: Expectations, finished: Finished) -> tuple[str, ...]:
    result = score(expect, finished)
    if result.rejections:
        assert result.score == 0.0
    return result.rejections


def test_empty_and_refusals() -> None:
    plain = Expectations()
    assert rejected(plain, Finished("  ")) == ("empty",)
    assert rejected(plain, Finished("", refused=True)) == ("refusal",)
    assert rejected(plain, Finished("I'm sorry, but I can't help with that.")) == ("refusal",)
    assert rejected(plain, Finished("I cannot assist with this request.")) == ("refusal",)
    assert rejected(plain, Finished("Blocked", finish="refusal")) == ("refusal",)
    assert rejected(plain, Finished("Sorry for the wait! Here is the post.")) == ()


def test_truncated_only_when_the_app_did_not_ask_for_a_short_answer() -> None:
    cut = Finished("Here is the start of a long", finish="length")
    assert rejected(Expectations(max_tokens=None), cut) == ("truncated",)
    assert rejected(Expectations(max_tokens=4096), cut) == ("truncated",)
    assert rejected(Expectations(max_tokens=256), cut) == ()


def test_json_against_the_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    expect = Expectations(json=True, schema=schema)
    assert rejected(expect, Finished('{"n": 3}')) == ()
    assert rejected(expect, Finished('```json\n{"n": 3}\n```')) == ()
    assert rejected(expect, Finished('{"n": "three"}')) == ("schema_mismatch",)
    assert rejected(expect, Finished("n is three")) == ("invalid_json",)
    assert rejected(Expectations(json=True), Finished("{not json")) == ("invalid_json",)


def test_tool_calls_against_the_offered_tools() -> None:
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    expect = Expectations(tools=(Tool("weather", params),))
    assert rejected(expect, Finished(calls=[SeenCall("weather", '{"city": "Oslo"}')])) == ()
    assert rejected(expect, Finished(calls=[SeenCall("stocks", "{}")])) == ("unknown_tool",)
    bad = [SeenCall("weather", '{"city": 7}')]
    assert rejected(expect, Finished(calls=bad)) == ("invalid_tool_arguments",)
    broken = [SeenCall("weather", '{"city": ')]
    assert rejected(expect, Finished(calls=broken)) == ("invalid_tool_arguments",)


def test_avoided_words_in_text_and_arguments() -> None:
    expect = Expectations(brand=BRAND)
    result = score(expect, Finished("A Cheap thrill from Northwind Coffee."))
    assert (result.rejections, result.brand_compliant) == (("avoided_word",), False)
    args = Finished(calls=[SeenCall("x", '{"t": "so cheap"}')])
    assert "avoided_word" in rejected(expect, args)
    assert score(expect, Finished("Cheapest? No: fair.")).brand_compliant is True  # whole words


# -- task checks ------------------------------------------------------------------------------


def test_task_structure_missing_parts_cost_points() -> None:
    email = "Subject: Hello\nPreheader: Read on\n\nHi there,\n\nBody."
    assert score(Expectations(task="email"), Finished(email)).score == 5.0
    result = score(Expectations(task="email"), Finished("Hi there, a short note."))
    assert result.score == 2.0
    assert result.deductions == ("missing:subject", "missing:preheader", "missing:body")
    ad = score(Expectations(task="ad_copy"), Finished("Headline 1: Hi\nCTA: Buy"))
    assert ad.deductions == ("missing:description",)


def test_platform_and_field_limits() -> None:
    post = Expectations(task="social_media_post", platform="x")
    assert score(post, Finished("a" * 280)).score == 5.0
    over = score(post, Finished("a" * 281))
    assert (over.score, over.deductions) == (3.5, ("over_limit:x",))
    subject = "Subject: " + "s" * 79 + "\nPreheader: p\n\nBody"
    assert score(Expectations(task="email"), Finished(subject)).deductions == (
        "over_limit:email_subject",
    )
    ads = "Headline 1: " + "h" * 31 + "\nDescription 1: d\nCTA: Go"
    assert score(Expectations(task="ad_copy"), Finished(ads)).deductions == (
        "over_limit:ads_headline",
    )
    meta = Expectations(task="ad_copy", platform="meta_ads")
    assert score(meta, Finished(ads)).score == 5.0  # Meta allows 40
    tags = Expectations(task="social_media_post", platform="instagram")
    many = "Post " + " ".join(f"#t{i}" for i in range(31))
    assert score(tags, Finished(many)).deductions == ("too_many_hashtags",)


def test_brand_name_and_keywords_where_the_task_calls_for_them() -> None:
    expect = Expectations(task="campaign_plan", brand=BRAND)
    plan = ("Objective: grow\nAudience: parents\nChannels: email\nTimeline:\n- Week 1: go\n"
            "KPIs: reach")  # fmt: skip
    result = score(expect, Finished(plan))
    assert (result.deductions, result.brand_compliant) == (("brand_name", "brand_keyword"), False)
    assert result.score == 4.0
    good = score(expect, Finished(plan + "\nBrand: Northwind Coffee, fair trade"))
    assert (good.score, good.brand_compliant) == (5.0, True)


# -- dialect readers --------------------------------------------------------------------------


def test_provider_refusal_markers() -> None:
    chat = {"choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}]}
    assert from_body("openai.chat", json.dumps(chat).encode()).refused
    claude = {"content": [], "stop_reason": "refusal"}
    assert from_body("anthropic.messages", json.dumps(claude).encode()).refused
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    assert from_body("gemini.generate_content", json.dumps(blocked).encode()).refused
    safety = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SAFETY"}]}
    assert from_body("gemini.generate_content", json.dumps(safety).encode()).refused


def test_streams_read_like_bodies_in_every_dialect() -> None:
    for dialect in DIALECTS:
        for stream in (False, True):
            parsed = request(dialect, PROMPTS["blog_post"], stream=stream)
            mock = answer(dialect, parsed, MockSpec(seed=1))
            finished = answer_of(dialect, b"".join(mock.events) if stream else mock.body, stream)
            assert finished is not None
            assert finished.text.startswith("# "), (dialect, stream)
            assert finished.finish == "stop", (dialect, stream)


def test_accumulation_is_bounded() -> None:
    finished = Finished()
    for _ in range(3):
        finished.add_text("x" * (MAX_TEXT_CHARS // 2))
    assert len(finished.text) == MAX_TEXT_CHARS
    assert finished.clipped
    assert score(Expectations(), finished).clipped


def test_embeddings_are_not_scored() -> None:
    assert answer_of("openai.embeddings", b"{}", stream=False) is None
