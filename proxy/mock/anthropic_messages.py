"""Mock answers in the Anthropic Messages shape (object and named-event stream)."""

from __future__ import annotations

from typing import Any

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Draft
from proxy.mock.text import split_for_stream
from proxy.sse import encode


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return encode(dumps({"type": name} | payload).decode(), event=name)


def render(request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    message: dict[str, Any] = {
        "id": f"msg_{draft.ident}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "stop_sequence": None,
    }
    stop_reason = (
        "tool_use" if draft.tool_calls else "max_tokens" if draft.truncated else "end_turn"
    )
    calls = [
        {"type": "tool_use", "id": f"toolu_{call.ident}", "name": call.name, "input": call.input}
        for call in draft.tool_calls
    ]
    if not request.stream:
        return dumps(
            message
            | {
                "content": calls or [{"type": "text", "text": draft.text}],
                "stop_reason": stop_reason,
                "usage": {"input_tokens": draft.input_tokens, "output_tokens": draft.output_tokens},
            }
        ), []
    start = message | {
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": draft.input_tokens, "output_tokens": 1},
    }
    events = [_event("message_start", {"message": start}), _event("ping", {})]
    for index, call in enumerate(calls):
        opening = call | {"input": {}}
        events.append(_event("content_block_start", {"index": index, "content_block": opening}))
        events += [
            _event(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}},
            )
            for piece in split_for_stream(draft.tool_calls[index].arguments, structured=True)
        ]
        events.append(_event("content_block_stop", {"index": index}))
    if not calls:
        text_block = {"type": "text", "text": ""}
        events.append(_event("content_block_start", {"index": 0, "content_block": text_block}))
        events += [
            _event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
            )
            for piece in split_for_stream(draft.text, structured=draft.structured)
        ]
        events.append(_event("content_block_stop", {"index": 0}))
    events += [
        _event(
            "message_delta",
            {
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": draft.output_tokens},
            },
        ),
        _event("message_stop", {}),
    ]
    return b"", events
