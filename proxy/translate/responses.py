"""OpenAI Responses -> the hub (OpenAI chat) for requests, the hub -> Responses for answers.

Only the client side exists: a Responses request served by Anthropic or Gemini (an
OpenAI provider takes it bytes-through). Text, function tools and structured output
translate; what needs OpenAI's server-side state (``previous_response_id``, built-in
tools, reasoning items) is refused by name. A Responses stream ends with the whole
response object, so its text and call arguments are kept as they pass (bounded by
the answer's own size) to build that last event.
"""

from __future__ import annotations

import json
import time
from typing import Any

from proxy.dialects.base import BadRequest, compact
from proxy.sse import encode
from proxy.translate.hub import Untranslatable, dialect_id, neutral_usage, refuse_unknown

CLIENT = "non-OpenAI"

_REQUEST_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "text",
        "stream",
        "store",
        "metadata",
        "user",
        "parallel_tool_calls",
        "service_tier",
        "truncation",
    }
)


def request_to_hub(payload: dict[str, Any]) -> dict[str, Any]:
    """A Responses request as a hub request (the client speaks Responses)."""
    refuse_unknown(payload, _REQUEST_FIELDS, "", CLIENT)
    if payload.get("truncation", "disabled") != "disabled":
        raise Untranslatable("truncation", CLIENT, "only 'disabled'")
    hub: dict[str, Any] = {"model": payload["model"]}
    messages: list[dict[str, Any]] = []
    if payload.get("instructions"):
        messages.append({"role": "system", "content": str(payload["instructions"])})
    given = payload["input"]
    items = [{"role": "user", "content": given}] if isinstance(given, str) else given
    for index, item in enumerate(items):
        _item_to_hub(item, f"input[{index}]", messages)
    hub["messages"] = messages
    if payload.get("max_output_tokens"):
        hub["max_completion_tokens"] = payload["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if payload.get(name) is not None:
            hub[name] = payload[name]
    if payload.get("stream") is True:
        hub["stream"] = True
        hub["stream_options"] = {"include_usage": True}
    tools = []
    for index, tool in enumerate(payload.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise Untranslatable(f"tools[{index}]", CLIENT, "only function tools")
        function = {"name": tool.get("name"), "parameters": tool.get("parameters") or {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    if tools:
        hub["tools"] = tools
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise Untranslatable("tool_choice", CLIENT, "only a function can be forced")
        hub["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice in ("auto", "none", "required"):
        hub["tool_choice"] = choice
    fmt = (payload.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        hub["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": fmt.get("name", "output"),
                "schema": fmt.get("schema") or {},
                "strict": bool(fmt.get("strict")),
            },
        }
    elif fmt.get("type") == "json_object":
        hub["response_format"] = {"type": "json_object"}
    return hub


def _item_to_hub(item: Any, field: str, messages: list[dict[str, Any]]) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"'{field}' must be an object")
    kind = item.get("type", "message")
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        return
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        return
    if kind != "message" or item.get("role") not in ("user", "assistant", "system", "developer"):
        raise Untranslatable(field, CLIENT, f"a '{kind}' item has no equivalent")
    content = item.get("content")
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for index, part in enumerate(content):
            part_kind = part.get("type") if isinstance(part, dict) else None
            if part_kind in ("input_text", "output_text"):
                parts.append({"type": "text", "text": part.get("text", "")})
            elif part_kind == "input_image" and part.get("image_url"):
                parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
            else:
                raise Untranslatable(
                    f"{field}.content[{index}]", CLIENT, f"a '{part_kind}' part has no equivalent"
                )
        simple = all(p["type"] == "text" for p in parts)
        content = "".join(p["text"] for p in parts) if simple else parts
    messages.append({"role": item["role"], "content": content})


# -- answers ----------------------------------------------------------------------------


def _usage(usage: Any) -> dict[str, Any]:
    neutral = neutral_usage(usage)
    return {
        "input_tokens": neutral.input_tokens,
        "input_tokens_details": {"cached_tokens": neutral.cache_read_tokens},
        "output_tokens": neutral.output_tokens,
        "output_tokens_details": {"reasoning_tokens": neutral.reasoning_tokens},
        "total_tokens": neutral.input_tokens + neutral.output_tokens,
    }


def _response(
    payload: dict[str, Any], ident: str, model: Any, status: str, created: Any = None
) -> dict[str, Any]:
    """The response object; echoes what the request set, as the API does."""
    return {
        "id": dialect_id(ident, "chatcmpl-", "resp_"),
        "object": "response",
        "created_at": created if isinstance(created, int) else int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "previous_response_id": payload.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": payload.get("store", True),
        "temperature": payload.get("temperature", 1.0),
        "text": payload.get("text") or {"format": {"type": "text"}},
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": payload.get("tools", []),
        "top_p": payload.get("top_p", 1.0),
        "truncation": payload.get("truncation", "disabled"),
        "usage": None,
        "user": payload.get("user"),
        "metadata": payload.get("metadata", {}),
    }


#: Hub finish reasons that leave a Responses answer `incomplete`, and the reason it gives.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _finished(response: dict[str, Any], finish: str | None) -> dict[str, Any]:
    """Status and reason from the hub's finish reason (cut answers are `incomplete`)."""
    reason = _INCOMPLETE.get(finish or "")
    if reason:
        return response | {"status": "incomplete", "incomplete_details": {"reason": reason}}
    return response | {"status": "completed"}


def _item_status(finish: str | None) -> str:
    """A message cut short is `incomplete` too, as the API marks it."""
    return "incomplete" if finish in _INCOMPLETE else "completed"


def _message(ident: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": dialect_id(ident, "chatcmpl-", "msg_"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call(call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": dialect_id(call_id, "call_", "fc_"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def answer_from_hub(hub: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A hub answer as a Responses object (another provider served a Responses client)."""
    choice = (hub.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    ident = str(hub.get("id") or "translated")
    output = []
    finish = choice.get("finish_reason")
    if message.get("content"):
        output.append(_message(ident, message["content"], _item_status(finish)))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            _call(
                str(call.get("id")),
                str(function.get("name")),
                str(function.get("arguments") or "{}"),
            )
        )
    done = _response(payload, ident, hub.get("model"), "completed", hub.get("created"))
    return _finished(done, finish) | {
        "output": output,
        "usage": _usage(hub.get("usage")),
    }


class StreamFromHub:
    """Hub chunks -> Responses stream events (created, output items and their deltas,
    completed with the whole response)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.sequence = 0
        self.ident = ""
        self.model: Any = None
        self.created: Any = None
        self.items: list[dict[str, Any]] = []  # output items so far, the open one last
        self.calls: dict[int, int] = {}  # hub tool call index -> output index
        self.finish: str | None = None
        self.usage: Any = None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self.sequence:
            self.ident = str(chunk.get("id") or "translated")
            self.model, self.created = chunk.get("model"), chunk.get("created")
            opened = self._response("in_progress")
            out.append(self._emit("response.created", {"response": opened}))
            out.append(self._emit("response.in_progress", {"response": opened}))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return b"".join(out)

    def _text(self, text: str) -> list[bytes]:
        out = []
        item = self.items[-1] if self.items else None
        if item is None or item["type"] != "message" or item["status"] != "in_progress":
            out += self._close_open()
            item = _message(self.ident, "", "in_progress") | {"content": []}
            self.items.append(item)
            index = len(self.items) - 1
            out.append(
                self._emit(
                    "response.output_item.added", {"output_index": index, "item": dict(item)}
                )
            )
            item["content"] = [{"type": "output_text", "text": "", "annotations": []}]
            out.append(
                self._emit(
                    "response.content_part.added",
                    self._where() | {"part": dict(item["content"][0])},
                )
            )
        item["content"][0]["text"] += text
        out.append(
            self._emit(
                "response.output_text.delta", self._where() | {"delta": text, "logprobs": []}
            )
        )
        return out

    def _call_delta(self, call: dict[str, Any]) -> list[bytes]:
        out = []
        function = call.get("function") or {}
        position = call.get("index", 0)
        if position not in self.calls:
            out += self._close_open()
            item = _call(str(call.get("id")), str(function.get("name")), "", "in_progress")
            self.items.append(item)
            self.calls[position] = len(self.items) - 1
            out.append(
                self._emit(
                    "response.output_item.added",
                    {"output_index": len(self.items) - 1, "item": dict(item)},
                )
            )
        index = self.calls[position]
        item = self.items[index]
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            out.append(
                self._emit(
                    "response.function_call_arguments.delta",
                    {"item_id": item["id"], "output_index": index, "delta": function["arguments"]},
                )
            )
        return out

    def _where(self) -> dict[str, Any]:
        index = len(self.items) - 1
        return {"item_id": self.items[index]["id"], "output_index": index, "content_index": 0}

    def _response(self, status: str) -> dict[str, Any]:
        return _response(self.payload, self.ident, self.model, status, self.created)

    def _close_open(self, status: str = "completed") -> list[bytes]:
        """End every item still in progress (a message's text, a call's arguments)."""
        out = []
        for index, item in enumerate(self.items):
            if item["status"] != "in_progress":
                continue
            item["status"] = status if item["type"] == "message" else "completed"
            if item["type"] == "message":
                where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                part = item["content"][0]
                out.append(
                    self._emit(
                        "response.output_text.done", where | {"text": part["text"], "logprobs": []}
                    )
                )
                out.append(self._emit("response.content_part.done", where | {"part": part}))
            else:
                out.append(
                    self._emit(
                        "response.function_call_arguments.done",
                        {
                            "item_id": item["id"],
                            "output_index": index,
                            "arguments": item["arguments"],
                        },
                    )
                )
            out.append(
                self._emit("response.output_item.done", {"output_index": index, "item": item})
            )
        return out

    def close(self) -> bytes:
        out = self._close_open(_item_status(self.finish))
        done = _finished(self._response("completed"), self.finish) | {
            "output": self.items,
            "usage": _usage(self.usage),
        }
        out.append(self._emit(f"response.{done['status']}", {"response": done}))
        return b"".join(out)

    def _emit(self, name: str, body: dict[str, Any]) -> bytes:
        event = {"type": name} | body | {"sequence_number": self.sequence}
        self.sequence += 1
        return encode(compact(event), event=name)
