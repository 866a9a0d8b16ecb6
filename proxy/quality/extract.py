"""Reading a finished answer out of each dialect's response: whole bodies and streams.

`from_body` reads a non-streamed JSON body; `Accumulator` is fed the stream's
events as the relay (or the mock's writer) already parses them (`proxy.sse`) and
keeps only the text and tool calls, bounded by `MAX_TEXT_CHARS`. Embeddings carry
no answer to score: `extractable` says which dialects do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from proxy.quality.finished import Finished, SeenCall
from proxy.sse import Event

#: Gemini finish reasons and block reasons that mean the provider withheld the answer.
_GEMINI_BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "OTHER"}
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _load(text: str | bytes) -> dict[str, Any]:
    try:
        return _dict(json.loads(text))
    except ValueError:
        return {}


# -- OpenAI chat ------------------------------------------------------------------------------


def _chat_finish(found: Finished, reason: Any) -> None:
    if reason == "length":
        found.finish = "length"
    elif reason == "content_filter":
        found.finish, found.refused = "refusal", True
    elif reason in ("tool_calls", "function_call"):
        found.finish = "tool"
    elif reason:
        found.finish = "stop"


def _chat_body(body: dict[str, Any], found: Finished) -> None:
    choice = _dict(_list(body.get("choices"))[0]) if _list(body.get("choices")) else {}
    message = _dict(choice.get("message"))
    if isinstance(message.get("content"), str):
        found.add_text(message["content"])
    if message.get("refusal"):
        found.refused = True
        found.add_text(str(message["refusal"]))
    for call in _list(message.get("tool_calls")):
        fn = _dict(_dict(call).get("function"))
        seen = SeenCall(str(fn.get("name", "")))
        found.add_arguments(seen, str(fn.get("arguments", "")))
        found.calls.append(seen)
    _chat_finish(found, choice.get("finish_reason"))


def _chat_event(event: Event, found: Finished, calls: dict[Any, SeenCall]) -> None:
    chunk = _load(event.data)
    for choice in map(_dict, _list(chunk.get("choices"))):
        delta = _dict(choice.get("delta"))
        if isinstance(delta.get("content"), str):
            found.add_text(delta["content"])
        if delta.get("refusal"):
            found.refused = True
            found.add_text(str(delta["refusal"]))
        for call in map(_dict, _list(delta.get("tool_calls"))):
            fn = _dict(call.get("function"))
            key = call.get("index", len(calls))
            seen = calls.get(key)
            if seen is None:
                seen = calls[key] = SeenCall(str(fn.get("name", "")))
                found.calls.append(seen)
            found.add_arguments(seen, str(fn.get("arguments") or ""))
        _chat_finish(found, choice.get("finish_reason"))


# -- OpenAI responses -------------------------------------------------------------------------


def _responses_body(body: dict[str, Any], found: Finished) -> None:
    for item in map(_dict, _list(body.get("output"))):
        if item.get("type") == "message":
            for part in map(_dict, _list(item.get("content"))):
                if part.get("type") == "output_text":
                    found.add_text(str(part.get("text", "")))
                elif part.get("type") == "refusal":
                    found.refused = True
                    found.add_text(str(part.get("refusal", "")))
        elif item.get("type") == "function_call":
            seen = SeenCall(str(item.get("name", "")))
            found.add_arguments(seen, str(item.get("arguments", "")))
            found.calls.append(seen)
    reason = _dict(body.get("incomplete_details")).get("reason")
    if body.get("status") == "incomplete" and reason == "max_output_tokens":
        found.finish = "length"
    elif reason == "content_filter" or found.refused:
        found.finish, found.refused = "refusal", True
    elif found.calls:
        found.finish = "tool"
    elif body.get("status"):
        found.finish = "stop"


def _responses_event(event: Event, found: Finished, calls: dict[Any, SeenCall]) -> None:
    data = _load(event.data)
    kind = data.get("type") or event.event
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        # The closing event carries the whole response: it supersedes the deltas.
        whole = Finished()
        _responses_body(_dict(data.get("response")), whole)
        if whole.text or whole.calls or whole.finish:
            found.text, found.calls, found.finish = whole.text, whole.calls, whole.finish
            found.refused, found.clipped = whole.refused or found.refused, whole.clipped
    elif kind == "response.output_text.delta":
        found.add_text(str(data.get("delta", "")))
    elif kind == "response.refusal.delta":
        found.refused = True
        found.add_text(str(data.get("delta", "")))


# -- Anthropic messages -----------------------------------------------------------------------


def _anthropic_finish(found: Finished, reason: Any) -> None:
    if reason == "max_tokens":
        found.finish = "length"
    elif reason == "refusal":
        found.finish, found.refused = "refusal", True
    elif reason == "tool_use":
        found.finish = "tool"
    elif reason:
        found.finish = "stop"


def _anthropic_body(body: dict[str, Any], found: Finished) -> None:
    for block in map(_dict, _list(body.get("content"))):
        if block.get("type") == "text":
            found.add_text(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            seen = SeenCall(str(block.get("name", "")))
            found.add_arguments(seen, json.dumps(block.get("input", {})))
            found.calls.append(seen)
    _anthropic_finish(found, body.get("stop_reason"))


def _anthropic_event(event: Event, found: Finished, calls: dict[Any, SeenCall]) -> None:
    data = _load(event.data)
    kind = data.get("type") or event.event
    if kind == "content_block_start":
        block = _dict(data.get("content_block"))
        if block.get("type") == "tool_use":
            seen = calls[data.get("index")] = SeenCall(str(block.get("name", "")))
            found.calls.append(seen)
        elif block.get("type") == "text":
            found.add_text(str(block.get("text", "")))
    elif kind == "content_block_delta":
        delta = _dict(data.get("delta"))
        if delta.get("type") == "text_delta":
            found.add_text(str(delta.get("text", "")))
        elif delta.get("type") == "input_json_delta" and data.get("index") in calls:
            found.add_arguments(calls[data.get("index")], str(delta.get("partial_json", "")))
    elif kind == "message_delta":
        _anthropic_finish(found, _dict(data.get("delta")).get("stop_reason"))


# -- Gemini -----------------------------------------------------------------------------------


def _gemini_chunk(chunk: dict[str, Any], found: Finished) -> None:
    feedback = _dict(chunk.get("promptFeedback") or chunk.get("prompt_feedback"))
    if feedback.get("blockReason") or feedback.get("block_reason"):
        found.finish, found.refused = "refusal", True
    for candidate in map(_dict, _list(chunk.get("candidates"))[:1]):
        for part in map(_dict, _list(_dict(candidate.get("content")).get("parts"))):
            if isinstance(part.get("text"), str) and not part.get("thought"):
                found.add_text(part["text"])
            call = _dict(part.get("functionCall") or part.get("function_call"))
            if call:
                seen = SeenCall(str(call.get("name", "")))
                found.add_arguments(seen, json.dumps(call.get("args", {})))
                found.calls.append(seen)
        reason = candidate.get("finishReason") or candidate.get("finish_reason")
        if reason == "MAX_TOKENS":
            found.finish = "length"
        elif reason in _GEMINI_BLOCKED:
            found.finish, found.refused = "refusal", True
        elif reason:
            found.finish = "tool" if found.calls else "stop"


def _gemini_body(body: dict[str, Any], found: Finished) -> None:
    _gemini_chunk(body, found)


def _gemini_event(event: Event, found: Finished, calls: dict[Any, SeenCall]) -> None:
    _gemini_chunk(_load(event.data), found)


BodyReader = Callable[[dict[str, Any], Finished], None]
EventReader = Callable[[Event, Finished, dict[Any, SeenCall]], None]

#: dialect name -> (read a whole body, read one stream event); a new dialect adds a line.
READERS: dict[str, tuple[BodyReader, EventReader]] = {
    "openai.chat": (_chat_body, _chat_event),
    "openai.responses": (_responses_body, _responses_event),
    "anthropic.messages": (_anthropic_body, _anthropic_event),
    "gemini.generate_content": (_gemini_body, _gemini_event),
}


def extractable(dialect: str) -> bool:
    """Whether answers of `dialect` carry text or tool calls to score (embeddings do not)."""
    return dialect in READERS


def from_body(dialect: str, body: bytes) -> Finished:
    """The answer in a whole (non-streamed) JSON response body."""
    found = Finished()
    READERS[dialect][0](_load(body), found)
    return found


class Accumulator:
    """Builds a `Finished` from a stream's events as they pass; bounded memory."""

    __slots__ = ("_calls", "_read", "found")

    def __init__(self, dialect: str) -> None:
        self._read = READERS[dialect][1]
        self._calls: dict[Any, SeenCall] = {}
        self.found = Finished()

    def feed(self, event: Event) -> None:
        self._read(event, self.found, self._calls)
