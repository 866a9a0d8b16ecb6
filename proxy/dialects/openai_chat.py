"""OpenAI Chat Completions: ``POST /v1/chat/completions``."""

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
from proxy.dialects.limits import check_choices
from proxy.sse import Event, encode

#: OpenAI's error `type` for each kind (the SDK maps on status; `type` is for people).
_OPENAI_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TIMEOUT: "invalid_request_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
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
        check_choices(payload)
        return ParsedRequest(
            model=model,
            stream=payload.get("stream") is True,
            max_tokens=optional_int(payload, "max_completion_tokens", "max_tokens"),
            payload=payload,
            raw=raw,
        )

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
