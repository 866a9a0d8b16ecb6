"""Where each dialect's request keeps the user's prompt: what the mock answers, and what
the quality scorer reads its expectations from (`PROMPTS`, one line per dialect)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from proxy.mock.text import content_text, last_user_text

PromptReader = Callable[[dict[str, Any]], str]


def messages_prompt(payload: dict[str, Any]) -> str:
    """OpenAI chat and Anthropic: the last user message."""
    return last_user_text(payload.get("messages"))


def responses_prompt(payload: dict[str, Any]) -> str:
    """`input` is a string, or items (messages whose content is a string or input parts)."""
    given = payload.get("input")
    if isinstance(given, str):
        return given
    text = last_user_text(given)
    if text or not isinstance(given, list):
        return text
    return " ".join(content_text(item.get("content")) for item in given if isinstance(item, dict))


def embedding_inputs(payload: dict[str, Any]) -> list[str | Sequence[int]]:
    """The items to embed: a string, a token array, or a list of either (checked by the dialect)."""
    given = payload.get("input")
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given and all(isinstance(t, int) for t in given):
        return [given]
    return list(given) if isinstance(given, list) else []


def embeddings_prompt(payload: dict[str, Any]) -> str:
    return " ".join(item for item in embedding_inputs(payload) if isinstance(item, str))


def gemini_prompt(payload: dict[str, Any]) -> str:
    """The text of the last user turn of `contents` (a turn with no role is the user's)."""
    contents = payload.get("contents")
    if not isinstance(contents, list):
        return ""
    for turn in reversed(contents):
        if isinstance(turn, dict) and turn.get("role", "user") == "user":
            return content_text(turn.get("parts"))
    return ""


#: dialect name -> where its prompt is; a new dialect adds a line.
PROMPTS: dict[str, PromptReader] = {
    "openai.chat": messages_prompt,
    "anthropic.messages": messages_prompt,
    "openai.responses": responses_prompt,
    "openai.embeddings": embeddings_prompt,
    "gemini.generate_content": gemini_prompt,
}
