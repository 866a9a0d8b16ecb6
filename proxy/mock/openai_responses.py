"""Mock answers in the OpenAI Responses shape (object and named-event stream)."""

from __future__ import annotations

from typing import Any

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Draft
from proxy.mock.text import content_text, last_user_text, split_for_stream
from proxy.sse import encode


def prompt(payload: dict[str, Any]) -> str:
    """`input` is a string, or items (messages whose content is a string or input parts)."""
    given = payload.get("input")
    if isinstance(given, str):
        return given
    text = last_user_text(given)
    if text or not isinstance(given, list):
        return text
    return " ".join(content_text(item.get("content")) for item in given if isinstance(item, dict))


def _usage(draft: Draft) -> dict[str, Any]:
    return {
        "input_tokens": draft.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": draft.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": draft.input_tokens + draft.output_tokens,
    }


def _response(request: ParsedRequest, draft: Draft, status: str) -> dict[str, Any]:
    """The response object; echoes what the request set, as the API does."""
    payload = request.payload
    text_config = payload.get("text") if isinstance(payload.get("text"), dict) else None
    return {
        "id": f"resp_{draft.ident}",
        "object": "response",
        "created_at": draft.created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "model": request.model,
        "output": [],
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "previous_response_id": payload.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": payload.get("store", True),
        "temperature": payload.get("temperature", 1.0),
        "text": text_config or {"format": {"type": "text"}},
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": payload.get("tools", []),
        "top_p": payload.get("top_p", 1.0),
        "truncation": payload.get("truncation", "disabled"),
        "usage": None,
        "user": payload.get("user"),
        "metadata": payload.get("metadata", {}),
    }


def _items(draft: Draft) -> list[dict[str, Any]]:
    """The output items: the mock's function calls, or one assistant message."""
    if draft.tool_calls:
        return [
            {
                "id": f"fc_{call.ident}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_{call.ident}",
                "name": call.name,
                "arguments": call.arguments,
            }
            for call in draft.tool_calls
        ]
    part = {"type": "output_text", "text": draft.text, "annotations": []}
    return [
        {
            "id": f"msg_{draft.ident}",
            "type": "message",
            "status": "incomplete" if draft.truncated else "completed",
            "role": "assistant",
            "content": [part],
        }
    ]


def render(request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    items = _items(draft)
    # Cut at max_output_tokens: the API calls the response incomplete and says why.
    status = "incomplete" if draft.truncated else "completed"
    done = _response(request, draft, status) | {"output": items, "usage": _usage(draft)}
    if draft.truncated:
        done["incomplete_details"] = {"reason": "max_output_tokens"}
    if not request.stream:
        return dumps(done), []

    events: list[bytes] = []

    def emit(name: str, body: dict[str, Any]) -> None:
        event = {"type": name} | body | {"sequence_number": len(events)}
        events.append(encode(dumps(event).decode(), event=name))

    emit("response.created", {"response": _response(request, draft, "in_progress")})
    emit("response.in_progress", {"response": _response(request, draft, "in_progress")})
    for index, item in enumerate(items):
        if item["type"] == "function_call":
            opened = item | {"status": "in_progress", "arguments": ""}
            emit("response.output_item.added", {"output_index": index, "item": opened})
            where: dict[str, Any] = {"item_id": item["id"], "output_index": index}
            for piece in split_for_stream(item["arguments"], structured=True):
                emit("response.function_call_arguments.delta", where | {"delta": piece})
            emit("response.function_call_arguments.done", where | {"arguments": item["arguments"]})
        else:
            part = item["content"][0]
            opened = item | {"status": "in_progress", "content": []}
            emit("response.output_item.added", {"output_index": index, "item": opened})
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            emit("response.content_part.added", where | {"part": part | {"text": ""}})
            for piece in split_for_stream(draft.text, structured=draft.structured):
                emit("response.output_text.delta", where | {"delta": piece, "logprobs": []})
            emit("response.output_text.done", where | {"text": draft.text, "logprobs": []})
            emit("response.content_part.done", where | {"part": part})
        emit("response.output_item.done", {"output_index": index, "item": item})
    emit(f"response.{status}", {"response": done})
    return b"", events
