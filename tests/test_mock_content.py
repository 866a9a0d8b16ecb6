"""Marketing content on the mock: the task's structure, the brand applied, platform limits."""

from __future__ import annotations

import json
import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from proxy.marketing import TASKS, Brand, brand_from_system, recognise_task, system_text
from proxy.mock.content import write
from tests.conftest import StartSidecar, anthropic_client, openai_client

MOCK_ONLY = {"mock": {"seed": 5}, "traffic": {"realWeight": 0}}
BRAND = {
    "name": "Northwind Coffee",
    "voice": ["warm", "witty"],
    "audience": "busy parents",
    "keywords": ["fair trade", "oat milk"],
    "avoid": ["cheap", "best", "guarantee"],
}
PROMPTS = {
    "social_media_post": "Write a tweet announcing our new cold brew",
    "email": "Write an email for the summer sale on cold brew",
    "ad_copy": "Write Google Ads copy for our cold brew",
    "landing_page": "Create a landing page for our subscription box",
    "campaign_plan": "Plan a campaign for the autumn blend launch",
    "blog_post": "Write a blog post about brewing coffee at home",
    "product_description": "Write a product description for a ceramic pour-over",
    "content_variations": "Give me 3 variations of a headline for our espresso",
    "brand_voice_analysis": "Analyze the brand voice of our homepage copy",
}


def test_every_task_is_recognised_from_its_prompt() -> None:
    assert {task: recognise_task(prompt) for task, prompt in PROMPTS.items()} == {
        task: task for task in TASKS
    }


async def test_nine_tasks_have_their_structure_and_the_brand(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    texts = {}
    for task in TASKS:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Please help with our cold brew ({task})"}],
            extra_headers={"x-llm-task": task, "x-brand-context": json.dumps(BRAND)},
        )
        texts[task] = completion.choices[0].message.content or ""
    assert re.search(r"^Subject: .+\nPreheader: .+\n\n", texts["email"])
    assert all(f"Headline {i}:" in texts["ad_copy"] for i in (1, 2, 3))
    assert "Description 1:" in texts["ad_copy"]
    assert "CTA:" in texts["ad_copy"]
    assert texts["landing_page"].count("\n## ") >= 4
    plan = texts["campaign_plan"]
    assert "Channels:" in plan
    assert len(re.findall(r"- Week \d: .+ on .+ - assets: ", plan)) == 4
    assert texts["blog_post"].startswith("# ")
    assert "## Conclusion" in texts["blog_post"]
    assert "Features:\n- " in texts["product_description"]
    assert "Variant A" in texts["content_variations"]
    assert "Variant B" in texts["content_variations"]
    assert "Tone attributes:" in texts["brand_voice_analysis"]
    assert "Warm" in texts["brand_voice_analysis"]
    for task, text in texts.items():
        assert "Northwind Coffee" in text or "fair trade" in text.lower(), task
        for banned in BRAND["avoid"]:
            assert not re.search(rf"\b{banned}\b", text, re.IGNORECASE), (task, banned)
    for task in ("email", "landing_page", "blog_post", "product_description"):
        assert "fair trade" in texts[task], task
        assert "oat milk" in texts[task], task


async def test_brand_from_the_system_prompt(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    message = await client.messages.create(
        model="claude-sonnet-5",
        max_tokens=600,
        system="You write for us.\nBrand: Bluepeak Outdoors\nVoice: bold\nAvoid: cheap, easy",
        messages=[{"role": "user", "content": "Write a product description for a trail tent"}],
    )
    text = message.content[0].text  # type: ignore[union-attr]
    assert "trail tent" in text
    assert not re.search(r"\b(cheap|easy)\b", text, re.IGNORECASE)


async def test_json_mode_gets_the_task_fields(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Write an email about our new blend, as JSON"}],
        response_format={"type": "json_object"},
    )
    email = json.loads(completion.choices[0].message.content or "")
    assert set(email) == {"subject", "preheader", "body", "cta"}


brands = st.builds(
    Brand,
    name=st.sampled_from(["", "Acme", "Northwind Coffee Roasters International Holdings"]),
    voice=st.lists(st.sampled_from(["playful", "bold", "warm", "luxury"]), max_size=2).map(tuple),
    audience=st.sampled_from(["", "busy parents", "enterprise IT buyers in regulated industries"]),
    keywords=st.lists(st.sampled_from(["eco", "fair trade", "free shipping"]), max_size=3).map(
        tuple
    ),
    avoid=st.lists(st.sampled_from(["cheap", "easy", "smart", "best"]), max_size=2).map(tuple),
)
topics = st.sampled_from(
    ["shoes", "a lamp", "our new extremely lightweight waterproof trail running shoe collection"]
)


@settings(max_examples=150, deadline=None)
@given(brand=brands, topic=topics, seed=st.integers(0, 2**32))
def test_platform_limits_hold(brand: Brand, topic: str, seed: int) -> None:
    tweet = write("social_media_post", random.Random(seed), f"Write a tweet about {topic}", brand)
    assert len(tweet) <= 280
    ads = write("ad_copy", random.Random(seed), f"Google Ads copy for {topic}", brand)
    assert all(len(h) <= 30 for h in re.findall(r"^Headline \d: (.*)$", ads, re.MULTILINE))
    assert all(len(d) <= 90 for d in re.findall(r"^Description \d: (.*)$", ads, re.MULTILINE))
    meta = write("ad_copy", random.Random(seed), f"Meta ads for {topic}", brand)
    assert all(len(h) <= 40 for h in re.findall(r"^Headline \d: (.*)$", meta, re.MULTILINE))
    email = write("email", random.Random(seed), f"An email about {topic}", brand)
    subject = re.search(r"^Subject: (.*)$", email, re.MULTILINE)
    assert subject is not None
    assert 0 < len(subject.group(1)) <= 78
    instagram = write("social_media_post", random.Random(seed), f"Instagram post on {topic}", brand)
    assert len(instagram) <= 2200
    assert instagram.count("#") <= 30
    for text in (tweet, ads, email):
        for banned in brand.avoid:
            assert not re.search(rf"\b{banned}\b", text, re.IGNORECASE)


class Email(BaseModel):
    subject: str
    preheader: str
    body: str
    hashtags: list[str]
    brand: str


async def test_structured_answers_speak_of_the_topic_and_brand(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Write an email about our new cold brew"}],
        response_format=Email,
        extra_headers={"x-brand-context": json.dumps(BRAND)},
    )
    email = completion.choices[0].message.parsed
    assert email is not None
    assert "cold brew" in email.subject
    assert len(email.subject) <= 78
    assert email.brand == "Northwind Coffee"
    assert "fair trade" in email.body
    assert all(tag in {"#FairTrade", "#OatMilk"} for tag in email.hashtags[:1])
    for banned in BRAND["avoid"]:
        assert not re.search(rf"\b{banned}\b", email.model_dump_json(), re.IGNORECASE)


def test_brand_lines_are_read_from_every_dialects_system_prompt() -> None:
    lines = "Brand: Acme\nVoice: playful\nAvoid: cheap"
    shapes = [
        {"messages": [{"role": "system", "content": lines}]},  # OpenAI chat
        {"messages": [{"role": "developer", "content": [{"type": "text", "text": lines}]}]},
        {"system": [{"type": "text", "text": lines}]},  # Anthropic blocks
        {"instructions": lines},  # Responses
        {"systemInstruction": {"parts": [{"text": lines}]}},  # Gemini
    ]
    for payload in shapes:
        brand = brand_from_system(system_text(payload))
        assert brand == Brand(name="Acme", voice=("playful",), avoid=("cheap",)), payload
