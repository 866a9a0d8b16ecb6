"""Deterministic, plausible answer text.

Same seed and same request give the same words, so a failing test or demo can be
replayed; different prompts give different text, so an app sees variety.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from proxy.mock.phrases import read

_OPENERS = [
    "Here is a draft about the {topic}.",
    "A short take on the {topic}:",
    "Thanks for asking about the {topic}.",
    "Let's look at the {topic}.",
]
_SENTENCES = [
    "It focuses on what matters most to the reader and keeps the message clear.",
    "Each point is concrete, specific and easy to act on.",
    "The tone stays friendly and confident without overpromising.",
    "A clear next step closes it, so the reader knows what to do.",
    "It balances detail with brevity so it reads well on any screen.",
    "Key benefits come first, supporting facts follow.",
]


def request_rng(seed: int, raw_request: bytes) -> random.Random:
    """A random source fixed by the configured seed and the request bytes."""
    digest = hashlib.blake2b(raw_request, digest_size=8, key=str(seed).encode()[:64]).digest()
    return random.Random(int.from_bytes(digest, "big"))


def last_user_text(messages: Any) -> str:
    """The text of the last user turn, whatever the content shape (string or parts)."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and "text" in part
        )
    return ""


def compose(rng: random.Random, prompt: str) -> str:
    """A few sentences about the prompt's topic."""
    text = rng.choice(_OPENERS).format(topic=read(prompt).subject)
    return text + " " + " ".join(rng.sample(_SENTENCES, k=rng.randint(2, 4)))


def first_words(text: str, max_tokens: int | None) -> str:
    """`text` cut to `max_tokens` words (a word is at least a token), layout kept."""
    if max_tokens is None:
        return text
    words = list(re.finditer(r"\S+", text))
    if len(words) <= max_tokens:
        return text
    return text[: words[max(1, max_tokens) - 1].end()]


def split_for_stream(text: str, structured: bool = False) -> list[str]:
    """Chunks the size real streams send: a word with its leading space, or for JSON
    (which has few spaces) a few characters at a time."""
    if structured:
        return [text[i : i + _JSON_PIECE] for i in range(0, len(text), _JSON_PIECE)] or [""]
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


#: Characters per streamed piece of JSON: about the 3-4 tokens a real delta carries.
_JSON_PIECE = 12
