"""The README's sample mock answers are what the mock writes today, word for word.

They are the issue-18 bar made visible ("sampled mock answers read as finished copy:
three examples per dialect"), so they must not drift from the code: this test
rebuilds them from the documented requests (seed 7) and compares.
"""

from __future__ import annotations

import json
from pathlib import Path

from proxy.config.model import MockSpec
from proxy.mock.answer import answer
from proxy.quality import from_body
from proxy.quality.readable import problems
from tests.test_quality import request

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- mock samples: start -->", "<!-- mock samples: end -->"
SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "hashtags": {"type": "array",
                   "items": {"type": "string"}, "minItems": 2, "maxItems": 3}},
    "required": ["headline", "hashtags"],
}  # fmt: skip
TOOLS = {
    "tools": [{"type": "function", "function": {"name": "get_price", "parameters": {
        "type": "object", "properties": {"product": {"type": "string"},
        "city": {"type": "string"}}, "required": ["product", "city"]}}}],
}  # fmt: skip
#: dialect -> (prompt, system prompt, extra request fields) x 3
SAMPLES: dict[str, list[tuple[str, str, dict[str, object]]]] = {
    "openai.chat": [
        ("Write a tweet announcing our new oat-milk latte", "", {}),
        ("Write Google Ads copy for our Harbor Hoodie", "", {}),
        ("Use the get_price tool. What does a latte cost in Lisbon?", "", TOOLS),
    ],
    "anthropic.messages": [
        ("Write an email for busy parents about our meal kit", "Brand: Northwind Kitchen", {}),
        ("Give me 2 variations of a headline for our espresso", "", {}),
        ("Write a LinkedIn post about our cold brew. Return JSON matching this schema: "
         + json.dumps(SCHEMA), "", {}),
    ],
    "openai.responses": [
        ("Write a product description for a ceramic pour-over", "", {}),
        ("Write a Threads post introducing the Summit backpack for hikers", "", {}),
        ("Describe our Acme Smart Lamp. Respond only with JSON.", "", {}),
    ],
    "gemini.generate_content": [
        ("Write Meta ads copy for our yoga mat in a warm and friendly tone", "", {}),
        ("Write an Instagram caption for the Velvet Matte lipstick for Gen Z", "", {}),
        ("Write a short email for the summer sale on cold brew", "Voice: playful", {}),
    ],
}  # fmt: skip


def samples() -> str:
    """The README block: each request and the mock's answer (text, or the tool call)."""
    blocks = []
    for dialect, cases in SAMPLES.items():
        for prompt, system, extra in cases:
            parsed = request(dialect, prompt, system, extra=extra)
            found = from_body(dialect, answer(dialect, parsed, MockSpec(seed=7)).body)
            said = found.text or "\n".join(f"{c.name}({c.arguments})" for c in found.calls)
            shown = prompt if len(prompt) < 90 else prompt[: prompt.index(".") + 1] + " (+ schema)"
            system_note = f" (system: `{system}`)" if system else ""
            blocks.append(f"**{dialect}** · `{shown}`{system_note}\n\n```text\n{said}\n```")
    return "\n\n".join(blocks)


def test_readme_shows_what_the_mock_writes() -> None:
    text = README.read_text()
    shown = text[text.index(START) + len(START) : text.index(END)].strip()
    assert shown == samples(), "README mock samples are stale; expected:\n" + samples()


def test_the_samples_read_as_finished_copy() -> None:
    assert problems(samples()) == []
