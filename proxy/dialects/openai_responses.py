"""OpenAI Responses: ``POST /v1/responses``.

Streams use named events (``response.created`` ... ``response.completed``); usage
rides on the final response object inside the terminal event.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects import limits
from proxy.dialects.base import (
    BadRequest,
    ErrorKind,
    ParsedRequest,
    Usage,
    dumps,
    ints,
    optional_int,
    require_str,
)
from proxy.dialects.openai_chat import OpenAIDialect, openai_error
from proxy.sse import Event, encode

#: Events after which a Responses stream is over: finished, cut short by a limit,
#: failed, or an error event (the client has been told; nothing is missing).
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
#: Events whose `response` object carries the final usage.
_WITH_USAGE = frozenset({"response.completed", "response.incomplete", "response.failed"})


def read_usage(usage: Any) -> Usage | None:
    """Usage in the Responses naming (shared with the mock, which writes the same shape)."""
    if not isinstance(usage, dict):
        return None
    return ints(
        usage,
        input_tokens="input_tokens",
        output_tokens="output_tokens",
        cache_read_tokens="input_tokens_details.cached_tokens",
        reasoning_tokens="output_tokens_details.reasoning_tokens",
    )


class OpenAIResponses(OpenAIDialect):
    name = "openai.responses"

    def is_terminal(self, event: Event) -> bool:
        return event.event in _TERMINAL

    def is_error_event(self, event: Event) -> bool:
        return event.event in ("error", "response.failed")

    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        model = require_str(payload, "model")
        given = payload.get("input")
        if not (isinstance(given, str) and given) and not (isinstance(given, list) and given):
            raise BadRequest("'input' is required and must be a non-empty string or array")
        max_tokens = optional_int(payload, "max_output_tokens")
        limits.check_max_tokens(model, max_tokens, "max_output_tokens")
        text = payload.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and fmt.get("strict"):
            limits.check_strict_schema(fmt.get("schema"), "text.format")
        return ParsedRequest(
            model=model,
            stream=payload.get("stream") is True,
            max_tokens=max_tokens,
            payload=payload,
            raw=raw,
        )

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        # The documented `error` event has code/message at the top level, but the live API
        # nests them under "error" -- and only that nested object makes the openai SDK
        # raise APIError. Both are sent so either kind of client notices the failure.
        nested = openai_error(kind, message)["error"]
        flat = {"code": nested["code"], "message": message, "param": None}
        event = {"type": "error", "error": nested} | flat | {"sequence_number": 0}
        return encode(dumps(event).decode(), event="error")

    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        if event in _WITH_USAGE:
            response = payload.get("response")
            return read_usage(response.get("usage")) if isinstance(response, dict) else None
        return read_usage(payload.get("usage")) if event is None else None
