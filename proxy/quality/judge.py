"""The LLM judge's pure half: which answers are judged, what is asked, what the reply means.

A judge model scores a sampled share of answers 1-5 against a fixed rubric. The rubric
is versioned (`PROMPT_VERSION`): a change to it changes what the score means, so it gets
a new version rather than an edit. The request is built in the judge provider's own
dialect (OpenAI chat, Anthropic messages, Gemini generateContent) by one small function
each; the reply's score is read robustly (a JSON object, fenced or not, or a bare
``score: N``), and anything else is "no score" -- a judge failure, never the answer's.
The I/O (budget, rate limits, the call) is `proxy.server.judge`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.config import ProviderType
from proxy.dialects import Dialect, guess_dialect

PROMPT_VERSION = "judge-v1"

RUBRIC = """\
You grade one answer written by an AI assistant for a marketing team.
Score it from 1 to 5 against this rubric:
5 - does exactly what was asked, accurate, well written, ready to publish;
4 - does what was asked with minor flaws a quick edit fixes;
3 - partly does what was asked, or needs real rework;
2 - mostly off-task, wrong, or unusable;
1 - empty, a refusal, harmful, or nonsense.
Judge only the answer's quality for the request; ignore its length unless the request sets one.
Reply with JSON only, exactly: {"score": N} where N is an integer from 1 to 5."""

#: The request and the answer are cut to this many characters each in the judge's prompt:
#: a judge call's cost stays bounded whatever the app sends.
MAX_CHARS = 8_000
#: Tokens the judge may write: `{"score": 5}` needs a handful; a little room for chatter.
MAX_TOKENS = 64


def sampled(sample_rate: float, draw: float) -> bool:
    """Whether an answer is judged; `draw` is uniform in [0, 1), the caller's."""
    return draw < sample_rate


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    """One judge call in the judge provider's dialect."""

    dialect: Dialect
    #: The dialect's path as an app would call it (`Dialect.upstream_target` maps it).
    path: str
    body: bytes
    #: Headers the provider needs besides its key (Anthropic's API version).
    headers: dict[str, str] = field(default_factory=dict)


def prompt(question: str, answer: str) -> str:
    """The user turn: the request and the answer, each cut to `MAX_CHARS`."""
    return (
        f"<request>\n{question[:MAX_CHARS]}\n</request>\n"
        f"<answer>\n{answer[:MAX_CHARS]}\n</answer>\n"
        'Grade the answer. Reply with {"score": N} only.'
    )


def _openai(model: str, text: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {
        "model": model,
        "messages": [{"role": "system", "content": RUBRIC}, {"role": "user", "content": text}],
        "max_completion_tokens": MAX_TOKENS,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    return "/v1/chat/completions", body, {}


def _anthropic(model: str, text: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "system": RUBRIC,
        "messages": [{"role": "user", "content": text}],
    }
    return "/v1/messages", body, {"anthropic-version": "2023-06-01"}


def _gemini(model: str, text: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {
        "systemInstruction": {"parts": [{"text": RUBRIC}]},
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {
            "maxOutputTokens": MAX_TOKENS,
            "temperature": 0,
            "responseMimeType": "application/json",
        },
    }
    return f"/v1beta/models/{model}:generateContent", body, {}


_BUILDERS: dict[ProviderType, Callable[[str, str], tuple[str, dict[str, Any], dict[str, str]]]]
_BUILDERS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}


def judge_request(
    provider_type: ProviderType, model: str, question: str, answer: str
) -> JudgeRequest:
    """The judge call for `answer` to `question`, in the provider type's dialect."""
    path, body, headers = _BUILDERS[provider_type](model, prompt(question, answer))
    data = json.dumps(body, separators=(",", ":")).encode()
    return JudgeRequest(
        guess_dialect(path, {}), path, data, {"content-type": "application/json"} | headers
    )


def reply_text(provider_type: ProviderType, body: bytes) -> str:
    """The text of a judge's (non-streamed) reply; empty when it has none."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    parts: list[Any] = []
    if provider_type == "openai":
        choices = payload.get("choices") or [{}]
        parts = [((choices[0] or {}).get("message") or {}).get("content")]
    elif provider_type == "anthropic":
        parts = [b.get("text") for b in payload.get("content") or [] if isinstance(b, dict)]
    else:
        candidates = payload.get("candidates") or [{}]
        content = (candidates[0] or {}).get("content") or {}
        parts = [p.get("text") for p in content.get("parts") or [] if isinstance(p, dict)]
    return "".join(p for p in parts if isinstance(p, str))


_OBJECT = re.compile(r"\{[^{}]*\}")
_LOOSE = re.compile(r"""["']?score["']?\s*[:=]\s*["']?(\d+(?:\.\d+)?)""", re.IGNORECASE)


def parse_score(text: str) -> float | None:
    """The 1-5 score in a judge's reply, or None when there is no valid one.

    Tried in order: each JSON object in the text (so code fences and chatter around
    it do not matter) with a numeric ``score``; then a loose ``score: N``. A score
    outside 1-5 is no score (a judge that ignores the scale is not believed).
    """
    for match in _OBJECT.finditer(text):
        try:
            found = json.loads(match.group())
        except ValueError:
            continue
        value = found.get("score") if isinstance(found, dict) else None
        if isinstance(value, str):
            value = _number(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) if 1 <= value <= 5 else None
    loose = _LOOSE.search(text)
    if loose is not None:
        value = float(loose.group(1))
        return value if 1 <= value <= 5 else None
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
