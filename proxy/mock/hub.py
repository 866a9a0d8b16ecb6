"""The mock's answer in the hub format (OpenAI chat, `proxy.translate`): object and chunks.

The mock writes only this dialect; every other one is the hub's translation by
`proxy.translate`, the code cross-dialect fallback uses, so the mock answers as a
translated provider does and a fix there fixes the mock too.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects import ParsedRequest
from proxy.mock.draft import Draft
from proxy.mock.text import split_for_stream
from proxy.translate.hub import USAGE_SO_FAR


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


def _head(request: ParsedRequest, draft: Draft) -> dict[str, Any]:
    return {"id": f"chatcmpl-{draft.ident}", "created": draft.created, "model": request.model}


def _finish(draft: Draft) -> str:
    return "tool_calls" if draft.tool_calls else "length" if draft.truncated else "stop"


def answer(request: ParsedRequest, draft: Draft) -> dict[str, Any]:
    """The whole answer (a ``chat.completion``)."""
    message: dict[str, Any] = {"role": "assistant", "content": draft.text, "refusal": None}
    if draft.tool_calls:
        message |= {"content": None, "tool_calls": _calls(draft)}
    return _head(request, draft) | {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(draft)}
        ],
        "usage": _usage(draft),
        "system_fingerprint": "fp_llm_rollout_mock",
    }


def chunks(request: ParsedRequest, draft: Draft, pieces: int = 1) -> list[dict[str, Any]]:
    """The stream's chunks, `pieces` words (or bits of JSON a few characters long) each,
    ending with the usage chunk: every dialect's stream reports usage, an OpenAI
    client's drops it unless it asked (``stream_options.include_usage``)."""
    head = _head(request, draft) | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return head | {"choices": [choice]}

    out = []
    if draft.tool_calls:
        for index, call in enumerate(_calls(draft)):
            opening = {"index": index, **call, "function": call["function"] | {"arguments": ""}}
            first = {"role": "assistant", "content": None} if index == 0 else {}
            out.append(chunk(first | {"tool_calls": [opening]}))
            out += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in split_for_stream(call["function"]["arguments"], structured=True)
            ]
    else:
        out.append(chunk({"role": "assistant", "content": ""}))
        split = split_for_stream(draft.text, structured=draft.structured)
        out += [
            chunk({"content": "".join(split[i : i + pieces])}) for i in range(0, len(split), pieces)
        ]
    out.append(chunk({}, _finish(draft)))
    out.append(head | {"choices": [], "usage": _usage(draft)})
    # The prompt's count is known from the start, as Anthropic's message_start reports it.
    out[0][USAGE_SO_FAR] = _usage(draft) | {
        "completion_tokens": 0,
        "total_tokens": draft.input_tokens,
    }
    return out
