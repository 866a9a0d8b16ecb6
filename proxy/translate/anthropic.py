"""Anthropic Messages <-> the hub (OpenAI chat): requests, answers, stream events.

Anthropic's shape differs from the hub's in ways that carry meaning: the system
prompt is a top-level field, tool results are blocks of a *user* turn (the hub has
``tool`` messages), ``max_tokens`` is required, usage counts cached input apart
from ``input_tokens`` (the hub's prompt tokens include it), and a stream is named
events around content blocks (the hub's is flat deltas).
"""

from __future__ import annotations

import json
from typing import Any

from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.dialects.base import BadRequest, ErrorKind, compact
from proxy.dialects.limits import OUTPUT_LIMITS
from proxy.sse import Event, encode
from proxy.translate.hub import (
    TRANSLATABLE_FIELDS,
    USAGE_SO_FAR,
    Untranslatable,
    data_url,
    dialect_id,
    hub_usage,
    neutral_usage,
    produced_arguments,
    refuse_unknown,
    split_data_url,
    text_of,
    tool_arguments,
)

TARGET = "anthropic"
#: The API version the sidecar speaks when it calls Anthropic for another dialect.
API_VERSION = "2023-06-01"
#: What a translated request asks for when its client set no max tokens (Anthropic
#: requires the field; the hub's "no limit" is the model's own limit).
DEFAULT_MAX_TOKENS = 8192

_TO_HUB_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
_FROM_HUB_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "stream",
        "metadata",
        "output_config",
        "output_format",
        "service_tier",
    }
)


# -- requests ---------------------------------------------------------------------------


def request_to_hub(payload: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic request as a hub request (the client speaks Anthropic)."""
    refuse_unknown(payload, _REQUEST_FIELDS, "", "non-Anthropic")
    hub: dict[str, Any] = {
        "model": payload["model"],
        "max_completion_tokens": payload["max_tokens"],
    }
    messages: list[dict[str, Any]] = []
    system = payload.get("system")
    if system:
        messages.append({"role": "system", "content": _plain_text(system, "system")})
    for index, message in enumerate(payload["messages"]):
        messages += _message_to_hub(message, f"messages[{index}]")
    hub["messages"] = messages
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("_top_k", "top_k")):
        if payload.get(theirs) is not None:
            hub[ours] = payload[theirs]
    if payload.get("stop_sequences"):
        hub["stop"] = payload["stop_sequences"]
    if payload.get("stream") is True:
        hub["stream"] = True
        hub["stream_options"] = {"include_usage": True}
    if payload.get("tools"):
        hub["tools"] = [_tool_to_hub(t, f"tools[{i}]") for i, t in enumerate(payload["tools"])]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        hub["tool_choice"] = (
            {"type": "function", "function": {"name": choice.get("name")}}
            if kind == "tool"
            else {"any": "required", "none": "none"}.get(str(kind), "auto")
        )
        if choice.get("disable_parallel_tool_use"):
            hub["parallel_tool_calls"] = False
    fmt = (payload.get("output_config") or {}).get("format") or payload.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        hub["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt.get("schema") or {}, "strict": True},
        }
    return hub


def _plain_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for index, block in enumerate(value):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise Untranslatable(f"{field}[{index}]", "non-Anthropic", "only text blocks")
        return "\n\n".join(block.get("text", "") for block in value)
    raise BadRequest(f"'{field}' must be a string or a list of text blocks")


def _message_to_hub(message: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise BadRequest(f"'{field}.role' must be 'user' or 'assistant'")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"'{field}.content' must be a string or a list of blocks")
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        where = f"{field}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image" and role == "user":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, where)}})
        elif kind == "tool_use" and role == "assistant":
            calls.append(_hub_call(block))
        elif kind == "tool_result" and role == "user":
            text = _plain_text(block.get("content") or "", f"{where}.content")
            if block.get("is_error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        else:
            raise Untranslatable(where, "non-Anthropic", f"a '{kind}' block has no equivalent")
    if role == "assistant":
        hub: dict[str, Any] = {"role": "assistant", "content": text_of(parts) or None}
        if calls:
            hub["tool_calls"] = calls
        out.append(hub)
    elif parts:
        simple = all(p["type"] == "text" for p in parts)
        out.append({"role": "user", "content": text_of(parts) if simple else parts})
    return out


def _image_url(block: dict[str, Any], field: str) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return data_url(str(source.get("media_type")), str(source.get("data")))
    if source.get("type") == "url":
        return str(source.get("url"))
    raise Untranslatable(f"{field}.source", "non-Anthropic", "only base64 and url images")


def _tool_to_hub(tool: Any, field: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise Untranslatable(
            field, "non-Anthropic", f"server tool '{kind}' exists only at Anthropic"
        )
    function: dict[str, Any] = {"name": tool.get("name"), "parameters": tool.get("input_schema")}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


#: Hub (OpenAI chat) request fields Anthropic can express: those every target takes.
_HUB_FIELDS = TRANSLATABLE_FIELDS


def request_from_hub(hub: dict[str, Any], model: str) -> dict[str, Any]:
    """A hub request as Anthropic's (Anthropic serves it)."""
    refuse_unknown(hub, _HUB_FIELDS, "", TARGET)
    if hub.get("n", 1) != 1:
        raise Untranslatable("n", TARGET, "one answer per request")
    out: dict[str, Any] = {"model": model}
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(hub["messages"]):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        turn = _message_from_hub(message, f"messages[{index}]")
        if messages and messages[-1]["role"] == turn["role"]:
            messages[-1]["content"] += turn["content"]  # tool results, then the user's text
        else:
            messages.append(turn)
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    limit = hub.get("max_completion_tokens") or hub.get("max_tokens")
    out["max_tokens"] = limit or _default_max_tokens(model)
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "_top_k")):
        if hub.get(theirs) is not None:
            out[ours] = hub[theirs]
    stop = hub.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if hub.get("stream"):
        out["stream"] = True
    if hub.get("tools"):
        out["tools"] = [_tool_from_hub(t, f"tools[{i}]") for i, t in enumerate(hub["tools"])]
    choice = hub.get("tool_choice")
    if choice is not None and hub.get("tools"):
        if isinstance(choice, dict):
            out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
        else:
            out["tool_choice"] = {"type": {"required": "any"}.get(choice, choice)}
    if hub.get("parallel_tool_calls") is False and hub.get("tools"):
        out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    fmt = hub.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        raise Untranslatable(
            "response_format", TARGET, "JSON mode without a schema; give a json_schema"
        )
    return out


def _default_max_tokens(model: str) -> int:
    for prefix, limit in OUTPUT_LIMITS:
        if model.startswith(prefix):
            return min(limit, DEFAULT_MAX_TOKENS)
    return DEFAULT_MAX_TOKENS


def _message_from_hub(message: dict[str, Any], field: str) -> dict[str, Any]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        return {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id"),
                    "content": text_of(content),
                }
            ],
        }
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                blocks.append({"type": "text", "text": part.get("text", "")})
            elif kind == "image_url":
                blocks.append(_image_block(part.get("image_url") or {}))
            elif kind == "refusal":
                blocks.append({"type": "text", "text": part.get("refusal", "")})
            else:
                raise Untranslatable(
                    f"{field}.content[{index}]",
                    TARGET,
                    f"a '{kind}' part has no Anthropic equivalent",
                )
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_arguments(
                    function.get("arguments"), f"{field}.tool_calls[{index}].function.arguments"
                ),
            }
        )
    return {"role": "assistant" if role == "assistant" else "user", "content": blocks}


def _image_block(image: dict[str, Any]) -> dict[str, Any]:
    url = str(image.get("url", ""))
    inline = split_data_url(url)
    if inline is not None:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_from_hub(tool: dict[str, Any], field: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise Untranslatable(field, TARGET, "only function tools")
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object"},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


# -- answers ----------------------------------------------------------------------------


def _usage_to_hub(usage: Any) -> dict[str, Any]:
    neutral = AnthropicMessages().usage_from_payload({"usage": usage})
    if neutral is None:
        return hub_usage(neutral_usage(None))
    # Anthropic's input_tokens leave out cached input; the hub's prompt tokens hold it.
    neutral.input_tokens += neutral.cache_read_tokens + neutral.cache_write_tokens
    return hub_usage(neutral)


def _usage_from_hub(usage: Any) -> dict[str, int]:
    neutral = neutral_usage(usage)
    cached = neutral.cache_read_tokens + neutral.cache_write_tokens
    return {
        "input_tokens": max(neutral.input_tokens - cached, 0),
        "output_tokens": neutral.output_tokens,
        "cache_read_input_tokens": neutral.cache_read_tokens,
        "cache_creation_input_tokens": neutral.cache_write_tokens,
    }


def answer_to_hub(answer: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's answer as a hub answer (Anthropic served an OpenAI or Gemini client)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in answer.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(_hub_call(block))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": answer.get("id"),
        "object": "chat.completion",
        "model": answer.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _TO_HUB_FINISH.get(answer.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": _usage_to_hub(answer.get("usage")),
    }


def answer_from_hub(hub: dict[str, Any]) -> dict[str, Any]:
    """A hub answer as Anthropic's (another provider served an Anthropic client)."""
    choice = (hub.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.get("id")),
                "name": function.get("name"),
                "input": produced_arguments(function.get("arguments")),
            }
        )
    return {
        "id": _message_id(hub.get("id")),
        "type": "message",
        "role": "assistant",
        "model": hub.get("model"),
        "content": content,
        "stop_reason": _FROM_HUB_FINISH.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage_from_hub(hub.get("usage")),
    }


def _hub_call(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``tool_use`` block as the hub's tool call (arguments as JSON text)."""
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
    }


def _message_id(hub_id: Any) -> str:
    return dialect_id(hub_id, "chatcmpl-", "msg_") if hub_id else str(hub_id)


def _tool_id(hub_id: Any) -> str:
    return dialect_id(hub_id, "call_", "toolu_")


# -- streams ----------------------------------------------------------------------------


class StreamToHub:
    """Anthropic stream events -> hub chunks, as each event arrives."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.usage: dict[str, Any] = {}
        self.tools: dict[int, int] = {}  # content block index -> hub tool call index
        self.finish: str | None = None

    def feed(self, event: Event) -> list[dict[str, Any]]:
        try:
            data = json.loads(event.data)
        except ValueError:
            return []
        kind = event.event or data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.id, self.model = str(message.get("id", "")), str(message.get("model", ""))
            self.usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") != "tool_use":
                return []
            index = self.tools[data.get("index", 0)] = len(self.tools)
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": block.get("id"),
                                "type": "function",
                                "function": {"name": block.get("name"), "arguments": ""},
                            }
                        ]
                    }
                )
            ]
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tools.get(data.get("index", 0), 0)
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "function": {"arguments": delta.get("partial_json", "")},
                                }
                            ]
                        }
                    )
                ]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            reason = (data.get("delta") or {}).get("stop_reason")
            self.finish = _TO_HUB_FINISH.get(reason or "", "stop")
            return [self._chunk({}, self.finish)]
        if kind == "message_stop":
            return [self._chunk(None, None) | {"choices": [], "usage": _usage_to_hub(self.usage)}]
        return []

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "model": self.model,
        }
        if delta is not None:
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return chunk


class StreamFromHub:
    """Hub chunks -> Anthropic stream events (message_start, content blocks, message_delta,
    message_stop), built as each chunk arrives; only usage waits for the stream's end."""

    def __init__(self) -> None:
        self.started = False
        self.block: int | None = None  # the open content block's index
        self.block_kind = ""
        self.next_block = 0
        self.tool_blocks: dict[int, int] = {}  # hub tool call index -> block index
        self.stop_reason = "end_turn"
        self.usage: Any = None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            message: dict[str, Any] = {
                "id": _message_id(chunk.get("id")),
                "type": "message",
                "role": "assistant",
                "model": chunk.get("model"),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage_from_hub(chunk.get(USAGE_SO_FAR)),
            }
            out.append(_event("message_start", {"type": "message_start", "message": message}))
            out.append(_event("ping", {"type": "ping"}))  # as Anthropic sends after the start
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block_kind != "text":
                    out += self._open({"type": "text", "text": ""}, "text")
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or []:
                index = call.get("index", 0)
                function = call.get("function") or {}
                if index not in self.tool_blocks:
                    out += self._open(
                        {
                            "type": "tool_use",
                            "id": _tool_id(call.get("id")),
                            "name": function.get("name"),
                            "input": {},
                        },
                        "tool",
                    )
                    self.tool_blocks[index] = self.next_block - 1
                if function.get("arguments"):
                    out.append(
                        self._delta(
                            {"type": "input_json_delta", "partial_json": function["arguments"]}
                        )
                    )
            if choice.get("finish_reason"):
                self.stop_reason = _FROM_HUB_FINISH.get(choice["finish_reason"], "end_turn")
        return b"".join(out)

    def close(self) -> bytes:
        """The stream's end (the provider's terminal event was seen)."""
        out = self._close_block()
        usage = _usage_from_hub(self.usage)
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _open(self, block: dict[str, Any], kind: str) -> list[bytes]:
        out = self._close_block()
        self.block, self.block_kind = self.next_block, kind
        self.next_block += 1
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self.block, "content_block": block},
            )
        )
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.block, "delta": delta},
        )

    def _close_block(self) -> list[bytes]:
        if self.block is None:
            return []
        index, self.block, self.block_kind = self.block, None, ""
        return [_event("content_block_stop", {"type": "content_block_stop", "index": index})]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode(compact(data), event=name)


def error_kind(event: Event) -> ErrorKind:
    """The kind of an Anthropic stream ``error`` event."""
    try:
        kind = json.loads(event.data).get("error", {}).get("type")
    except (ValueError, AttributeError):
        kind = None
    return {
        "overloaded_error": ErrorKind.OVERLOADED,
        "rate_limit_error": ErrorKind.RATE_LIMITED,
        "invalid_request_error": ErrorKind.INVALID_REQUEST,
    }.get(kind, ErrorKind.INTERNAL)
