"""Mock answers in the OpenAI Chat Completions shape (object and chunk stream)."""

from __future__ import annotations

from typing import Any

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Draft
from proxy.mock.text import split_for_stream
from proxy.sse import encode


def _usage(draft: Draft) -> dict[str, int]:
    return {
        "prompt_tokens": draft.input_tokens,
        "completion_tokens": draft.output_tokens,
        "total_tokens": draft.input_tokens + draft.output_tokens,
    }


def _calls(draft: Draft) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{call.ident}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in draft.tool_calls
    ]


def render(request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    ident = f"chatcmpl-{draft.ident}"
    head: dict[str, Any] = {"id": ident, "created": draft.created, "model": request.model}
    finish = "tool_calls" if draft.tool_calls else "length" if draft.truncated else "stop"
    if not request.stream:
        message: dict[str, Any] = {"role": "assistant", "content": draft.text, "refusal": None}
        if draft.tool_calls:
            message |= {"content": None, "tool_calls": _calls(draft)}
        return dumps(
            head
            | {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": _usage(draft),
                "system_fingerprint": "fp_llm_rollout_mock",
            }
        ), []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode(
            dumps(head | {"object": "chat.completion.chunk", "choices": [choice]}).decode()
        )

    if draft.tool_calls:
        events = []
        for index, call in enumerate(_calls(draft)):
            opening = {"index": index, **call, "function": call["function"] | {"arguments": ""}}
            first = {"role": "assistant", "content": None} if index == 0 else {}
            events.append(chunk(first | {"tool_calls": [opening]}))
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in split_for_stream(call["function"]["arguments"], structured=True)
            ]
    else:
        events = [chunk({"role": "assistant", "content": ""})]
        events += [
            chunk({"content": piece})
            for piece in split_for_stream(draft.text, structured=draft.structured)
        ]
    events.append(chunk({}, finish))
    options = request.payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        tail = head | {"object": "chat.completion.chunk", "choices": [], "usage": _usage(draft)}
        events.append(encode(dumps(tail).decode()))
    events.append(encode("[DONE]"))
    return b"", events
