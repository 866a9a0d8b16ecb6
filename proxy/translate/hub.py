"""The hub format every translation passes through, and what all directions share.

The hub is OpenAI Chat Completions as plain dicts: requests, answers and stream
chunks (see the package docstring for why). A few facts OpenAI chat has no field
for ride along under hub-only keys that start with ``_`` (Anthropic's cache-write
tokens, ``top_k``); no client ever sees a hub dict, only what a dialect builds from it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from proxy.dialects.base import BadRequest, ErrorKind, Usage

#: Hub-only usage key: tokens written to a prompt cache (Anthropic bills them apart).
CACHE_WRITE = "_cache_write_tokens"

#: Hub-only chunk key: the usage known before the stream's end (hub usage, as in the last
#: chunk), from a provider that reports its prompt's tokens up front (Gemini in every
#: chunk, the mock), so that Anthropic's ``message_start`` can report them as Anthropic's
#: does; OpenAI reports usage only at the end and leaves it out.
USAGE_SO_FAR = "_usage_so_far"

#: Hub finish reasons (OpenAI's): stop, length, tool_calls, content_filter.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


class Untranslatable(BadRequest):
    """A request field the provider that would serve it cannot express (a 400 naming it)."""

    def __init__(self, field: str, target: str, why: str = "") -> None:
        reason = f": {why}" if why else ""
        super().__init__(
            f"'{field}' cannot be translated for a {target} provider{reason}. This request "
            f"was routed to {target} (fallback or provider weights); remove '{field}' or "
            "keep the request on a provider of its own API"
        )
        self.field = field


#: Hub (OpenAI chat) request fields every target dialect can express; `user`, `store`,
#: `seed`, `metadata` and `service_tier` do not change what the answer says and are
#: dropped where a target has no place for them.
TRANSLATABLE_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "_top_k",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "user",
        "store",
        "seed",
        "metadata",
        "service_tier",
        "n",
    }
)


def dialect_id(ident: Any, hub_prefix: str, prefix: str) -> str:
    """A hub id in a client dialect's own form (``chatcmpl-X`` -> ``msg_X``, ``call_X`` ->
    ``toolu_X``): SDK users and their logs see ids shaped as their provider's, and an id
    the client sends back in a later turn still names the same call, since every
    reference to it is rewritten alike. An id already in that form is kept."""
    text = str(ident)
    return text if text.startswith(prefix) else prefix + text.removeprefix(hub_prefix)


def refuse_unknown(payload: dict[str, Any], known: frozenset[str], where: str, target: str) -> None:
    """Refuse the first field the translation does not know: never a silent drop."""
    for name in payload:
        if name not in known:
            raise Untranslatable(f"{where}{name}", target)


def data_url(mime: str, data: str) -> str:
    return f"data:{mime};base64,{data}"


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:`` URL, or None for any other URL."""
    match = _DATA_URL.fullmatch(url)
    return (match["mime"], match["data"]) if match else None


def text_of(content: Any) -> str:
    """The text of OpenAI message content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def hub_usage(usage: Usage) -> dict[str, Any]:
    """Hub (OpenAI) usage from neutral counts: prompt tokens include cached ones."""
    prompt = usage.input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        CACHE_WRITE: usage.cache_write_tokens,
    }


def neutral_usage(usage: Any) -> Usage:
    """Neutral counts from hub usage (the inverse of `hub_usage`)."""
    if not isinstance(usage, dict):
        return Usage()

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=count(usage.get("prompt_tokens")),
        output_tokens=count(usage.get("completion_tokens")),
        cache_read_tokens=count(prompt_details.get("cached_tokens")),
        cache_write_tokens=count(usage.get(CACHE_WRITE)),
        reasoning_tokens=count(completion_details.get("reasoning_tokens")),
    )


def error_of(status: int, body: bytes) -> tuple[ErrorKind, str]:
    """The kind and message of any provider's error body (OpenAI, Anthropic, Google)."""
    kind = ErrorKind.for_status(status)
    try:
        payload = json.loads(body)
    except ValueError:
        return kind, body[:500].decode("utf-8", "replace") or f"HTTP {status}"
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return kind, str(message) if message else f"HTTP {status}"


def tool_arguments(arguments: Any, field: str) -> dict[str, Any]:
    """A tool call's arguments as an object (OpenAI sends them as a JSON string)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        raise BadRequest(f"'{field}' must be a JSON object encoded as a string") from None
    if not isinstance(value, dict):
        raise BadRequest(f"'{field}' must be a JSON object encoded as a string")
    return value


def produced_arguments(arguments: Any) -> dict[str, Any]:
    """Arguments a provider produced, for a dialect that takes them as an object: kept as
    the object, or under `_raw` when they are not a JSON object (an answer is never
    refused for what the model wrote; `tool_arguments` is the request side's strict twin)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": value}
