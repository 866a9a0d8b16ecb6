"""Gemini generateContent <-> the hub (OpenAI chat): requests, answers, stream chunks.

Gemini's shape differs from the hub's where meaning lives: roles are ``user`` and
``model``, the system prompt is ``systemInstruction``, a tool result is matched to
its call by function *name* (ids are optional, so the hub's ids are derived from
position and names are looked up from the call an id names), function arguments are
whole objects (a stream's argument fragments wait for their call's end), and a
stream has no end marker: the chunk with a ``finishReason`` is the last.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.dialects.base import BadRequest, compact
from proxy.dialects.gemini import read_usage
from proxy.sse import Event, encode
from proxy.translate.hub import (
    TRANSLATABLE_FIELDS,
    USAGE_SO_FAR,
    Untranslatable,
    data_url,
    hub_usage,
    neutral_usage,
    produced_arguments,
    refuse_unknown,
    split_data_url,
    text_of,
    tool_arguments,
)

TARGET = "Gemini"

_TO_HUB_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_FROM_HUB_FINISH = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}

_REQUEST_FIELDS = frozenset(
    {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"}
)
_CONFIG_FIELDS = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "candidateCount",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
    }
)
#: Hub fields and the generationConfig field each becomes.
_CONFIG_MAP = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("_top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def call_id(turn: int, index: int) -> str:
    """The id a Gemini function call is given in the hub (Gemini sends none)."""
    return f"call_{turn}_{index}"


# -- requests ---------------------------------------------------------------------------


def request_to_hub(payload: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """A Gemini request as a hub request (the client speaks Gemini)."""
    refuse_unknown(payload, _REQUEST_FIELDS, "", "non-Gemini")
    hub: dict[str, Any] = {"model": model}
    messages: list[dict[str, Any]] = []
    system = payload.get("systemInstruction")
    if system:
        messages.append({"role": "system", "content": _texts(system, "systemInstruction")})
    pending: dict[str, list[str]] = {}  # function name -> ids of calls awaiting a result
    for turn, content in enumerate(payload["contents"]):
        messages += _content_to_hub(content, turn, pending)
    hub["messages"] = messages
    config = payload.get("generationConfig") or {}
    refuse_unknown(config, _CONFIG_FIELDS, "generationConfig.", "non-Gemini")
    if config.get("candidateCount", 1) != 1:
        raise Untranslatable("generationConfig.candidateCount", "non-Gemini", "one answer only")
    for ours, theirs in _CONFIG_MAP:
        if config.get(theirs) is not None:
            hub[ours] = config[theirs]
    if config.get("maxOutputTokens"):
        hub["max_completion_tokens"] = config["maxOutputTokens"]
    if config.get("stopSequences"):
        hub["stop"] = config["stopSequences"]
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema")
        if schema is None and config.get("responseSchema") is not None:
            schema = json_schema(config["responseSchema"])
        hub["response_format"] = (
            {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
            if schema is not None
            else {"type": "json_object"}
        )
    if stream:
        hub["stream"] = True
        hub["stream_options"] = {"include_usage": True}
    tools = []
    for index, tool in enumerate(payload.get("tools") or []):
        if set(tool) - {"functionDeclarations"}:
            raise Untranslatable(f"tools[{index}]", "non-Gemini", "only functionDeclarations")
        for declaration in tool["functionDeclarations"]:
            parameters = declaration.get("parametersJsonSchema")
            if parameters is None and declaration.get("parameters") is not None:
                parameters = json_schema(declaration["parameters"])
            function = {
                "name": declaration.get("name"),
                "parameters": parameters or {"type": "object", "properties": {}},
            }
            if declaration.get("description"):
                function["description"] = declaration["description"]
            tools.append({"type": "function", "function": function})
    if tools:
        hub["tools"] = tools
    calling = (payload.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode, allowed = calling.get("mode"), calling.get("allowedFunctionNames") or []
    if mode == "ANY" and len(allowed) == 1:
        hub["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
    elif mode == "ANY" and allowed:
        raise Untranslatable(
            "toolConfig.functionCallingConfig.allowedFunctionNames",
            "non-Gemini",
            "one forced function or none",
        )
    elif mode in ("ANY", "NONE", "AUTO"):
        hub["tool_choice"] = {"ANY": "required", "NONE": "none", "AUTO": "auto"}[mode]
    return hub


def _texts(content: Any, field: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise BadRequest(f"'{field}.parts' must be a list")
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or "text" not in part:
            raise Untranslatable(f"{field}.parts[{index}]", "non-Gemini", "only text parts")
    return "".join(part["text"] for part in parts)


def _content_to_hub(content: Any, turn: int, pending: dict[str, list[str]]) -> list[dict[str, Any]]:
    field = f"contents[{turn}]"
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        raise BadRequest(f"'{field}.parts' must be a list")
    role = "assistant" if content.get("role") == "model" else "user"
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for index, part in enumerate(content["parts"]):
        where = f"{field}.parts[{index}]"
        if not isinstance(part, dict):
            raise BadRequest(f"'{where}' must be an object")
        if part.get("thought"):
            continue  # the model's own thinking, not part of the conversation
        if "text" in part:
            parts.append({"type": "text", "text": part["text"]})
        elif "inlineData" in part and role == "user":
            blob = part["inlineData"]
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": data_url(blob.get("mimeType", ""), blob.get("data", ""))},
                }
            )
        elif "fileData" in part and role == "user":
            parts.append(
                {"type": "image_url", "image_url": {"url": part["fileData"].get("fileUri", "")}}
            )
        elif "functionCall" in part and role == "assistant":
            call = part["functionCall"]
            ident = call.get("id") or call_id(turn, len(calls))
            pending.setdefault(call.get("name", ""), []).append(ident)
            calls.append(
                {
                    "id": ident,
                    "type": "function",
                    "function": {
                        "name": call.get("name"),
                        "arguments": json.dumps(call.get("args") or {}),
                    },
                }
            )
        elif "functionResponse" in part:
            answer = part["functionResponse"]
            waiting = pending.get(answer.get("name", "")) or []
            ident = answer.get("id") or (waiting.pop(0) if waiting else call_id(turn, index))
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": ident,
                    "content": json.dumps(answer.get("response") or {}),
                }
            )
        else:
            raise Untranslatable(where, "non-Gemini", "this part has no equivalent")
    if role == "assistant":
        message: dict[str, Any] = {"role": "assistant", "content": text_of(parts) or None}
        if calls:
            message["tool_calls"] = calls
        return [message]
    out = results
    if parts:
        simple = all(p["type"] == "text" for p in parts)
        out = [*out, {"role": "user", "content": text_of(parts) if simple else parts}]
    return out


def json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-subset ``Schema`` (``type: OBJECT``, ``nullable``) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in ("propertyOrdering", "nullable"):
            continue
        elif key in ("properties", "$defs", "defs"):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = json_schema(value)
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


#: Hub (OpenAI chat) request fields Gemini can express: those every target takes, and
#: the penalties (`presencePenalty`, `frequencyPenalty`).
_HUB_FIELDS = TRANSLATABLE_FIELDS | {"presence_penalty", "frequency_penalty"}


def request_from_hub(hub: dict[str, Any]) -> dict[str, Any]:
    """A hub request as Gemini's body (the model and streaming go in the URL)."""
    refuse_unknown(hub, _HUB_FIELDS, "", TARGET)
    if hub.get("n", 1) != 1:
        raise Untranslatable("n", TARGET, "one answer per request")
    if hub.get("parallel_tool_calls") is False:
        raise Untranslatable("parallel_tool_calls", TARGET, "Gemini cannot be held to one call")
    out: dict[str, Any] = {}
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name
    for index, message in enumerate(hub["messages"]):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        turn = _message_from_hub(message, f"messages[{index}]", names)
        if contents and contents[-1]["role"] == turn["role"]:
            contents[-1]["parts"] += turn["parts"]
        else:
            contents.append(turn)
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    out["contents"] = contents
    config: dict[str, Any] = {}
    for ours, theirs in _CONFIG_MAP:
        if hub.get(ours) is not None:
            config[theirs] = hub[ours]
    limit = hub.get("max_completion_tokens") or hub.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    stop = hub.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    fmt = hub.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            config["responseJsonSchema"] = schema
    if config:
        out["generationConfig"] = config
    if hub.get("tools"):
        out["tools"] = [
            {
                "functionDeclarations": [
                    _declaration(t, f"tools[{i}]") for i, t in enumerate(hub["tools"])
                ]
            }
        ]
    choice = hub.get("tool_choice")
    if choice is not None and hub.get("tools"):
        if isinstance(choice, dict):
            calling = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        else:
            calling = {"mode": {"required": "ANY", "none": "NONE"}.get(choice, "AUTO")}
        out["toolConfig"] = {"functionCallingConfig": calling}
    return out


def _message_from_hub(message: dict[str, Any], field: str, names: dict[str, str]) -> dict[str, Any]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        ident = str(message.get("tool_call_id"))
        if ident not in names:
            raise BadRequest(f"'{field}.tool_call_id' {ident!r} names no earlier tool call")
        text = text_of(content)
        try:
            response = json.loads(text)
        except ValueError:
            response = text
        if not isinstance(response, dict):
            response = {"result": response}
        return {
            "role": "user",
            "parts": [{"functionResponse": {"name": names[ident], "response": response}}],
        }
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"text": part.get("text", "")})
            elif kind == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                inline = split_data_url(url)
                if inline is None:
                    raise Untranslatable(
                        f"{field}.content[{index}].image_url",
                        TARGET,
                        "Gemini takes images inline (base64 data: URLs)",
                    )
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            else:
                raise Untranslatable(
                    f"{field}.content[{index}]", TARGET, f"a '{kind}' part has no Gemini equivalent"
                )
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        names[str(call.get("id"))] = str(function.get("name"))
        args = tool_arguments(
            function.get("arguments"), f"{field}.tool_calls[{index}].function.arguments"
        )
        parts.append({"functionCall": {"name": function.get("name"), "args": args}})
    return {"role": "model" if role == "assistant" else "user", "parts": parts}


def _declaration(tool: dict[str, Any], field: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise Untranslatable(field, TARGET, "only function tools")
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


# -- answers ----------------------------------------------------------------------------


def _usage_to_hub(metadata: Any) -> dict[str, Any]:
    return hub_usage(read_usage(metadata) or neutral_usage(None))


def _usage_from_hub(usage: Any) -> dict[str, int]:
    neutral = neutral_usage(usage)
    answer = neutral.output_tokens - neutral.reasoning_tokens
    out = {
        "promptTokenCount": neutral.input_tokens,
        "candidatesTokenCount": answer,
        "totalTokenCount": neutral.input_tokens + neutral.output_tokens,
    }
    if neutral.reasoning_tokens:
        out["thoughtsTokenCount"] = neutral.reasoning_tokens
    if neutral.cache_read_tokens:
        out["cachedContentTokenCount"] = neutral.cache_read_tokens
    return out


def _parts_to_delta(parts: list[Any], calls: list[dict[str, Any]], turn: int) -> dict[str, Any]:
    """Text and function calls of a candidate's parts as a hub delta/message."""
    text = "".join(
        p.get("text", "")
        for p in parts
        if isinstance(p, dict) and "text" in p and not p.get("thought")
    )
    new: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, dict) and "functionCall" in part:
            call = part["functionCall"]
            index = len(calls)
            entry = {
                "index": index,
                "id": call.get("id") or call_id(turn, index),
                "type": "function",
                "function": {
                    "name": call.get("name"),
                    "arguments": json.dumps(call.get("args") or {}),
                },
            }
            calls.append(entry)
            new.append(entry)
    delta: dict[str, Any] = {"content": text}
    if new:
        delta["tool_calls"] = new
    return delta


def _finish(candidate: dict[str, Any], calls: list[dict[str, Any]]) -> str | None:
    reason = candidate.get("finishReason")
    if not reason:
        return None
    if calls and reason == "STOP":
        return "tool_calls"
    return _TO_HUB_FINISH.get(reason, "stop")


def answer_to_hub(answer: dict[str, Any], turn: int) -> dict[str, Any]:
    """Gemini's answer as a hub answer. `turn` is the answer's position in the conversation
    (the ids of its function calls are derived from it, as a later request's will be)."""
    candidate = (answer.get("candidates") or [{}])[0]
    calls: list[dict[str, Any]] = []
    delta = _parts_to_delta((candidate.get("content") or {}).get("parts") or [], calls, turn)
    message: dict[str, Any] = {"role": "assistant", "content": delta["content"] or None}
    if calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
    return {
        "id": answer.get("responseId") or "gemini",
        "object": "chat.completion",
        "model": answer.get("modelVersion"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(candidate, calls) or "stop"}
        ],
        "usage": _usage_to_hub(answer.get("usageMetadata")),
    }


def answer_from_hub(hub: dict[str, Any]) -> dict[str, Any]:
    """A hub answer as Gemini's (another provider served a Gemini client)."""
    choice = (hub.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    parts: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(
            {
                "functionCall": {
                    "name": function.get("name"),
                    "args": produced_arguments(function.get("arguments")),
                }
            }
        )
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "index": 0,
                "finishReason": _FROM_HUB_FINISH.get(choice.get("finish_reason") or "stop", "STOP"),
            }
        ],
        "usageMetadata": _usage_from_hub(hub.get("usage")),
        "modelVersion": hub.get("model"),
        "responseId": _response_id(hub.get("id")),
    }


def _response_id(hub_id: Any) -> str:
    """Gemini's response ids have no prefix: the hub's ``chatcmpl-`` is dropped."""
    return str(hub_id).removeprefix("chatcmpl-")


# -- streams ----------------------------------------------------------------------------


class StreamToHub:
    """Gemini stream chunks -> hub chunks; the chunk with a finishReason ends the stream."""

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.calls: list[dict[str, Any]] = []
        self.started = False

    def feed(self, event: Event) -> list[dict[str, Any]]:
        try:
            data = json.loads(event.data)
        except ValueError:
            return []
        if not isinstance(data, dict):
            return []
        candidate = (data.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        delta = _parts_to_delta(parts, self.calls, self.turn)
        if not self.started:
            delta["role"] = "assistant"
            self.started = True
        base = {
            "id": data.get("responseId") or "gemini",
            "object": "chat.completion.chunk",
            "model": data.get("modelVersion"),
        }
        chunks = [base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
        if "role" in delta and data.get("usageMetadata"):  # the prompt's count, up front
            chunks[0][USAGE_SO_FAR] = _usage_to_hub(data["usageMetadata"])
        finish = _finish(candidate, self.calls)
        if finish is not None:
            chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            chunks.append(base | {"choices": [], "usage": _usage_to_hub(data.get("usageMetadata"))})
        return chunks


class StreamFromHub:
    """Hub chunks -> Gemini SSE chunks. Text goes out as it comes; a function call's
    argument fragments are held until the call ends (Gemini sends arguments whole)."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}
        self.finish = "STOP"
        self.usage: Any = None
        self.model: Any = None
        self.id = ""

    def feed(self, chunk: dict[str, Any]) -> bytes:
        self.model = chunk.get("model") or self.model
        self.id = _response_id(chunk.get("id") or self.id)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or []:
                held = self.calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                function = call.get("function") or {}
                held["name"] = function.get("name") or held["name"]
                held["arguments"] += function.get("arguments") or ""
            if delta.get("content"):
                out.append(self._chunk([{"text": delta["content"]}]))
            if choice.get("finish_reason"):
                self.finish = _FROM_HUB_FINISH.get(choice["finish_reason"], "STOP")
        return b"".join(out)

    def close(self) -> bytes:
        parts = [
            {"functionCall": {"name": c["name"], "args": produced_arguments(c["arguments"])}}
            for _, c in sorted(self.calls.items())
        ]
        # The last chunk carries a part, as Gemini's do, so that an SDK's `chunk.text` of
        # every chunk is a string.
        return self._chunk(parts or [{"text": ""}], final=True)

    def _chunk(self, parts: list[dict[str, Any]], final: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        chunk: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": self.id,
        }
        if final:
            candidate["finishReason"] = self.finish
            chunk["usageMetadata"] = _usage_from_hub(self.usage)
        return encode(compact(chunk))
