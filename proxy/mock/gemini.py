"""Mock answers in the Gemini generateContent shape (object and ``data:`` chunk stream)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Answer, Draft
from proxy.mock.text import content_text, split_for_stream
from proxy.sse import encode


def prompt(payload: dict[str, Any]) -> str:
    """The text of the last user turn of `contents` (a turn with no role is the user's)."""
    contents = payload.get("contents")
    if not isinstance(contents, list):
        return ""
    for turn in reversed(contents):
        if isinstance(turn, dict) and turn.get("role", "user") == "user":
            return content_text(turn.get("parts"))
    return ""


def _usage(draft: Draft, output_tokens: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": draft.input_tokens}
    if output_tokens:
        usage["candidatesTokenCount"] = output_tokens
    return usage | {
        "totalTokenCount": draft.input_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": draft.input_tokens}],
    }


def render(request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    tail = {"modelVersion": request.model, "responseId": draft.ident}

    def chunk(parts: list[dict[str, Any]], finish: bool, output_tokens: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
        if finish:
            # Gemini ends function calls with STOP too.
            candidate["finishReason"] = "MAX_TOKENS" if draft.truncated else "STOP"
        candidate["index"] = 0
        return {"candidates": [candidate], "usageMetadata": _usage(draft, output_tokens)} | tail

    calls = [{"functionCall": {"name": c.name, "args": c.input}} for c in draft.tool_calls]
    if not request.stream:
        return dumps(chunk(calls or [{"text": draft.text}], True, draft.output_tokens)), []
    if calls:  # Gemini sends a function call whole, in one chunk
        return b"", [encode(dumps(chunk(calls, True, draft.output_tokens)).decode())]
    # A few words per chunk, as Gemini streams; intermediate chunks count the prompt only.
    words = split_for_stream(draft.text, structured=draft.structured)
    pieces = ["".join(words[i : i + 4]) for i in range(0, len(words), 4)]
    events = [encode(dumps(chunk([{"text": p}], False, 0)).decode()) for p in pieces[:-1]]
    events.append(encode(dumps(chunk([{"text": pieces[-1]}], True, draft.output_tokens)).decode()))
    return b"", events


def as_json_array(answer: Answer) -> Answer:
    """A streamed answer as ``streamGenerateContent`` without ``?alt=sse`` sends it.

    Gemini then answers ``application/json``: one JSON array whose elements are the
    chunks the SSE form would send as ``data:`` lines (the REST API's default; only
    clients that ask for ``alt=sse`` get events). The time the chunks would take
    passes before the whole array is written. Errors are JSON already: unchanged.
    """
    if not answer.events:
        return answer
    chunks = [event.removeprefix(b"data: ").rstrip(b"\r\n") for event in answer.events]
    return replace(
        answer,
        content_type="application/json",
        body=b"[" + b",\r\n".join(chunks) + b"]",
        events=[],
        delays=[],
        wait=answer.wait + sum(answer.delays),
    )
