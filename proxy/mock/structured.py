"""What shape of answer a request asks for: free text, JSON against a schema, or a tool call.

Each dialect says it differently (OpenAI `response_format` and `tool_choice`,
Responses `text.format`, Anthropic `output_config.format` and forced tools, Gemini
`generationConfig.responseSchema` and `toolConfig`); `EXTRACTORS` reads each one
into the same `Wanted`, so the mock generates one way and writes one hub answer
that `proxy.translate` puts in each dialect's shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from proxy.marketing import system_text
from proxy.mock.prompted import prompted
from proxy.mock.schema import Schema, from_openapi
from proxy.mock.text import content_text


@dataclass(frozen=True, slots=True)
class Wanted:
    """The answer's shape. `schema` None with kind "json" means any JSON object."""

    kind: Literal["json", "tool"]
    schema: Schema | None = None
    name: str = ""
    #: JSON the assistant turn was prefilled with (Anthropic): the answer continues it.
    prefill: str = ""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    schema: Schema


Extractor = Callable[[dict[str, Any], str], Wanted | None]

#: Prompt phrases that ask for a tool even when the request does not force one.
_ASKS_FOR_TOOL = re.compile(
    r"\b(use|call|invoke|run|with) (the |a |your )?(\w+ )?(tool|function)s?\b", re.IGNORECASE
)


#: How libraries describe the tool that carries the app's final answer (pydantic-ai's
#: `final_result`, "The final response which ends this conversation"): a model answers
#: through it rather than in text, which such a library would send back as a retry.
_ANSWER_TOOL = re.compile(r"\bfinal[ _](result|response|answer|output)\b", re.IGNORECASE)


#: Instructions, in the system prompt or the turn, to answer by a tool call rather than in
#: text (instructor's "Return only the tool call", pydantic-ai's retry "Please include
#: your response in a tool call").
_ANSWER_BY_TOOL = re.compile(r"\b(in|with|as|only) (a|the) (tool|function) call\b", re.IGNORECASE)


def choose_tool(
    tools: list[Tool],
    forced: str | None,
    required: bool,
    prompt: str,
    answered: bool = False,
    payload: dict[str, Any] | None = None,
) -> Wanted | None:
    """The tool call to make: the forced one, else one the prompt names or asks for, else
    the answer tool. Once a tool's result is in the conversation (`answered`) the model
    does not call a working tool again: it answers, through the answer tool when there is
    one or a call is required, so a tool loop ends. The system prompt of `payload` is read
    only when nothing before decided (the mock path stays as fast without tools)."""
    if not tools:
        return None
    by_name = {t.name: t for t in tools}
    if forced is not None:
        tool = by_name.get(forced)
        return Wanted("tool", tool.schema, tool.name) if tool else None
    if answered:
        pick = _answer_tool(tools) or (tools[0] if required else None)
        return Wanted("tool", pick.schema, pick.name) if pick else None
    lowered = prompt.lower()
    named = [
        t for t in tools if t.name.lower() in lowered or t.name.replace("_", " ").lower() in lowered
    ]
    if named:
        return Wanted("tool", named[0].schema, named[0].name)
    if required or _ASKS_FOR_TOOL.search(prompt) or _ANSWER_BY_TOOL.search(prompt):
        return Wanted("tool", tools[0].schema, tools[0].name)
    if payload is not None and _ANSWER_BY_TOOL.search(system_text(payload)):
        return Wanted("tool", tools[0].schema, tools[0].name)
    pick = _answer_tool(tools)
    return Wanted("tool", pick.schema, pick.name) if pick else None


def _answer_tool(tools: list[Tool]) -> Tool | None:
    return next((t for t in tools if _ANSWER_TOOL.search(f"{t.name} {t.description}")), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# -- OpenAI chat ------------------------------------------------------------------------------


def _openai_chat_tools(payload: dict[str, Any]) -> list[Tool]:
    return [
        Tool(
            str(fn.get("name", "")),
            str(fn.get("description", "")),
            _dict(fn.get("parameters")) or {"type": "object"},
        )
        for t in _list(payload.get("tools"))
        if (fn := _dict(_dict(t).get("function"))).get("name")
    ]


def _openai_chat(payload: dict[str, Any], prompt: str) -> Wanted | None:
    messages = _list(payload.get("messages"))
    after_tool_result = bool(messages) and _dict(messages[-1]).get("role") == "tool"
    tools = _openai_chat_tools(payload)
    choice = payload.get("tool_choice")
    if choice != "none":
        forced = _dict(_dict(choice).get("function")).get("name")
        wanted = choose_tool(
            tools, forced, choice == "required", prompt, after_tool_result, payload
        )
        if wanted:
            return wanted
    return _openai_format(_dict(payload.get("response_format")))


def _openai_format(fmt: dict[str, Any]) -> Wanted | None:
    """`response_format` (chat) and `text.format` (responses) differ only in nesting."""
    if fmt.get("type") == "json_object":
        return Wanted("json")
    if fmt.get("type") != "json_schema":
        return None
    inner = _dict(fmt.get("json_schema")) or fmt  # chat nests it, responses does not
    return Wanted("json", _dict(inner.get("schema")) or None, str(inner.get("name", "")))


# -- OpenAI responses -------------------------------------------------------------------------


def _openai_responses_tools(payload: dict[str, Any]) -> list[Tool]:
    return [
        Tool(
            str(t.get("name")),
            str(t.get("description", "")),
            _dict(t.get("parameters")) or {"type": "object"},
        )
        for t in map(_dict, _list(payload.get("tools")))
        if t.get("type") == "function" and t.get("name")
    ]


def _openai_responses(payload: dict[str, Any], prompt: str) -> Wanted | None:
    items = _list(payload.get("input"))
    after_tool_result = bool(items) and _dict(items[-1]).get("type") == "function_call_output"
    tools = _openai_responses_tools(payload)
    choice = payload.get("tool_choice")
    if choice != "none":
        forced = _dict(choice).get("name") if _dict(choice).get("type") == "function" else None
        wanted = choose_tool(
            tools, forced, choice == "required", prompt, after_tool_result, payload
        )
        if wanted:
            return wanted
    return _openai_format(_dict(_dict(payload.get("text")).get("format")))


# -- Anthropic messages -----------------------------------------------------------------------


def _anthropic_tools(payload: dict[str, Any]) -> list[Tool]:
    return [
        Tool(
            str(t.get("name")),
            str(t.get("description", "")),
            _dict(t.get("input_schema")) or {"type": "object"},
        )
        for t in map(_dict, _list(payload.get("tools")))
        if t.get("name") and "input_schema" in t
    ]


def _anthropic_messages(payload: dict[str, Any], prompt: str) -> Wanted | None:
    messages = _list(payload.get("messages"))
    last = _dict(messages[-1]) if messages else {}
    after_tool_result = any(
        _dict(block).get("type") == "tool_result" for block in _list(last.get("content"))
    )
    tools = _anthropic_tools(payload)
    choice = _dict(payload.get("tool_choice"))
    if choice.get("type") != "none":
        forced = choice.get("name") if choice.get("type") == "tool" else None
        wanted = choose_tool(
            tools,
            forced,
            choice.get("type") == "any",
            prompt,
            after_tool_result,
            payload,
        )
        if wanted:
            return wanted
    # `output_config.format` is the GA name; `output_format` the structured-outputs beta one.
    fmt = _dict(_dict(payload.get("output_config")).get("format")) or _dict(
        payload.get("output_format")
    )
    if fmt.get("type") == "json_schema":
        return Wanted("json", _dict(fmt.get("schema")) or None)
    return None


# -- Gemini -----------------------------------------------------------------------------------


def _field(source: Any, camel: str) -> Any:
    """A Gemini field by its camelCase name or its proto snake_case one (both are accepted)."""
    if not isinstance(source, dict):
        return None
    if camel in source:
        return source[camel]
    return source.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel))


def _gemini_tools(payload: dict[str, Any]) -> list[Tool]:
    return [
        Tool(
            str(fn.get("name")),
            str(fn.get("description", "")),
            _dict(_field(fn, "parametersJsonSchema"))
            or from_openapi(fn.get("parameters"))
            or {"type": "object"},
        )
        for t in _list(payload.get("tools"))
        for fn in map(_dict, _list(_field(t, "functionDeclarations")))
        if fn.get("name")
    ]


def _gemini(payload: dict[str, Any], prompt: str) -> Wanted | None:
    contents = _list(payload.get("contents"))
    last = _dict(contents[-1]) if contents else {}
    after_tool_result = any(
        _field(p, "functionResponse") is not None for p in _list(last.get("parts"))
    )
    tools = _gemini_tools(payload)
    calling = _dict(_field(_field(payload, "toolConfig"), "functionCallingConfig"))
    mode = str(calling.get("mode", "AUTO")).upper()
    if mode != "NONE":
        allowed = [n for n in _list(_field(calling, "allowedFunctionNames")) if isinstance(n, str)]
        tools = [t for t in tools if t.name in allowed] or tools
        forced = allowed[0] if mode == "ANY" and len(allowed) == 1 else None
        wanted = choose_tool(tools, forced, mode == "ANY", prompt, after_tool_result, payload)
        if wanted:
            return wanted
    config = _dict(_field(payload, "generationConfig"))
    if isinstance(_field(config, "responseJsonSchema"), dict):
        return Wanted("json", _field(config, "responseJsonSchema"))
    if isinstance(_field(config, "responseSchema"), dict):
        return Wanted("json", from_openapi(_field(config, "responseSchema")))
    if _field(config, "responseMimeType") == "application/json":
        return Wanted("json")
    return None


#: dialect name -> how that dialect asks for JSON or a tool call.
EXTRACTORS: dict[str, Extractor] = {
    "openai.chat": _openai_chat,
    "openai.responses": _openai_responses,
    "anthropic.messages": _anthropic_messages,
    "gemini.generate_content": _gemini,
}


#: dialect name -> the tools a request offers (the scorer checks calls against them).
TOOL_LISTS: dict[str, Callable[[dict[str, Any]], list[Tool]]] = {
    "openai.chat": _openai_chat_tools,
    "openai.responses": _openai_responses_tools,
    "anthropic.messages": _anthropic_tools,
    "gemini.generate_content": _gemini_tools,
}


def offered_tools(dialect: str, payload: dict[str, Any]) -> list[Tool]:
    """Every tool the request declares, in any dialect."""
    listing = TOOL_LISTS.get(dialect)
    return listing(payload) if listing else []


def wanted(dialect: str, payload: dict[str, Any], prompt: str) -> Wanted | None:
    """The structured answer a request asks for, or None for free text.

    A request field (format, tools) decides first; JSON asked for in the prompt's words
    (`proxy.mock.prompted`) fills in what it leaves open: free text, or JSON mode
    without a schema.
    """
    extract = EXTRACTORS.get(dialect)
    if extract is None:
        return None
    shape = extract(payload, prompt)
    if shape is not None and (shape.kind == "tool" or shape.schema is not None):
        return shape
    asked = prompted(system_text(payload), prompt, _prefill(dialect, payload))
    if asked is None:
        return shape
    return Wanted("json", asked.schema, shape.name if shape else "", asked.prefill)


def _prefill(dialect: str, payload: dict[str, Any]) -> str:
    """The text an Anthropic request puts in the assistant's mouth (a last assistant turn)."""
    messages = _list(payload.get("messages"))
    last = _dict(messages[-1]) if messages else {}
    if dialect != "anthropic.messages" or last.get("role") != "assistant":
        return ""
    return content_text(last.get("content"))
