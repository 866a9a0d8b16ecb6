"""OpenAI Chat Completions: ``POST /v1/chat/completions``.

A chat stream reports usage only when asked (``stream_options.include_usage``). So
that every stream is charged its real cost, not its whole reservation, the sidecar
asks on the app's behalf and removes what asking adds before the app sees it: the
final chunk with ``choices: []`` and the ``"usage": null`` the other chunks then
carry. The app gets the stream byte for byte as it would have without the sidecar.
"""

from __future__ import annotations

import json
import re
from typing import Any

from proxy.dialects import limits
from proxy.dialects.base import (
    BadRequest,
    Dialect,
    ErrorKind,
    ParsedRequest,
    StreamFilter,
    Usage,
    dumps,
    ints,
    optional_int,
    require_str,
)
from proxy.sse import Event, encode

#: OpenAI's error `type` for each kind (the SDK maps on status; `type` is for people).
_OPENAI_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
    ErrorKind.REQUEST_TIMEOUT: "invalid_request_error",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.TIMEOUT: "timeout_error",
}


def openai_error(kind: ErrorKind, message: str) -> dict[str, Any]:
    """The OpenAI error object, shared by every OpenAI dialect."""
    return {
        "error": {
            "message": message,
            "type": _OPENAI_TYPES.get(kind, "server_error"),
            "param": None,
            "code": kind.name.lower(),
        }
    }


class OpenAIDialect(Dialect):
    """What all OpenAI endpoints share: bearer auth, the `/v1` prefix, the error object."""

    provider_type = "openai"
    otel_provider = "openai"
    sdk_prefix = "/v1"

    def error_body(self, kind: ErrorKind, message: str, request_id: str | None = None) -> bytes:
        return dumps(openai_error(kind, message))

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        # The SDK raises APIError on any data chunk that carries an "error" key.
        return encode(dumps(openai_error(kind, message)).decode())


class OpenAIChat(OpenAIDialect):
    name = "openai.chat"

    def is_terminal(self, event: Event) -> bool:
        return event.data == "[DONE]"

    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        model = require_str(payload, "model")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' is required and must be a non-empty array")
        max_tokens = optional_int(payload, "max_completion_tokens", "max_tokens")
        field = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
        limits.check_max_tokens(model, max_tokens, field)
        limits.check_count(payload.get("n"), limits.MAX_CHOICES, "n")
        fmt = payload.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        if isinstance(spec, dict) and spec.get("strict"):
            limits.check_strict_schema(spec.get("schema"), "response_format.json_schema")
        return ParsedRequest(
            model=model,
            stream=payload.get("stream") is True,
            max_tokens=max_tokens,
            payload=payload,
            raw=raw,
        )

    def upstream_body(self, request: ParsedRequest) -> tuple[bytes, StreamFilter | None]:
        if not request.stream:
            return request.raw, None
        options = request.payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            return request.raw, None
        asked = dict(options) if isinstance(options, dict) else {}
        body = request.payload | {"stream_options": asked | {"include_usage": True}}
        return json.dumps(body, separators=(",", ":")).encode(), AddedUsage()

    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            return None
        return ints(
            usage,
            input_tokens="prompt_tokens",
            output_tokens="completion_tokens",
            cache_read_tokens="prompt_tokens_details.cached_tokens",
            reasoning_tokens="completion_tokens_details.reasoning_tokens",
        )


#: ``"usage": null`` as a key of a chunk (quotes inside JSON strings are escaped, so
#: this cannot match text the model wrote).
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null')
#: The usage chunk: no choices, a usage object (Azure's content-filter chunk has no
#: choices either, but no usage object).
_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
#: Where an SSE event ends: a blank line.
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class AddedUsage:
    """Takes out of a chat stream what ``include_usage`` added (see module doc).

    Works on whole events: bytes of an event still arriving wait for its end.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        ends = list(_EVENT_END.finditer(data))
        if not ends:
            self._pending = data
            return b""
        whole, self._pending = data[: ends[-1].end()], data[ends[-1].end() :]
        out, start = [], 0
        for end in ends:
            out.append(_without_usage(whole[start : end.end()]))
            start = end.end()
        return b"".join(out)

    def close(self) -> bytes:
        rest, self._pending = self._pending, b""
        return _without_usage(rest)


def _without_usage(event: bytes) -> bytes:
    """One event as the app would have got it: the usage chunk dropped, null usage cut."""
    if _EMPTY_CHOICES.search(event) and _USAGE_OBJECT.search(event):
        return b""
    return _NULL_USAGE.sub(b"", event)
