"""Anthropic Messages: ``POST /v1/messages``."""

from __future__ import annotations

from typing import Any

from proxy.dialects.base import (
    BadRequest,
    Dialect,
    ErrorKind,
    ParsedRequest,
    Usage,
    dumps,
    ints,
    optional_int,
    require_str,
)
from proxy.sse import Event, encode

_ANTHROPIC_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "request_too_large",
    ErrorKind.REQUEST_TIMEOUT: "timeout_error",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}


def anthropic_error(kind: ErrorKind, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES.get(kind, "api_error"), "message": message},
    }
    if request_id:
        body["request_id"] = request_id
    return body


class AnthropicMessages(Dialect):
    name = "anthropic.messages"
    provider_type = "anthropic"
    otel_provider = "anthropic"

    def is_terminal(self, event: Event) -> bool:
        return event.event == "message_stop"

    def is_error_event(self, event: Event) -> bool:
        return event.event == "error"

    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        model = require_str(payload, "model")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: field required and must be a non-empty array")
        max_tokens = optional_int(payload, "max_tokens")
        if max_tokens is None:
            raise BadRequest("max_tokens: field required")
        return ParsedRequest(
            model=model,
            stream=payload.get("stream") is True,
            max_tokens=max_tokens,
            payload=payload,
            raw=raw,
        )

    def error_body(self, kind: ErrorKind, message: str, request_id: str | None = None) -> bytes:
        return dumps(anthropic_error(kind, message, request_id))

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        return encode(dumps(anthropic_error(kind, message)).decode(), event="error")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        # message_start carries usage inside "message"; message_delta at top level.
        source = payload.get("message") if event == "message_start" else payload
        usage = source.get("usage") if isinstance(source, dict) else None
        if not isinstance(usage, dict):
            return None
        return ints(
            usage,
            input_tokens="input_tokens",
            output_tokens="output_tokens",
            cache_read_tokens="cache_read_input_tokens",
            cache_write_tokens="cache_creation_input_tokens",
        )
