"""Google Gemini: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``.

Unlike the others, the model and whether to stream are in the URL, not the body.
Streams (``?alt=sse``) are ``data: {...}`` chunks with no closing marker: the last
chunk of a complete answer is the one whose candidates carry a ``finishReason``.
"""

from __future__ import annotations

import re
from typing import Any

from proxy.dialects import limits
from proxy.dialects.base import (
    BadRequest,
    Dialect,
    ErrorKind,
    ParsedRequest,
    Usage,
    dumps,
    loads_or_none,
)
from proxy.sse import Event, SSEParser, encode

#: What a Gemini model name is made of (`gemini-2.5-flash`, `gemini-1.5-pro-002`).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

#: Google's canonical status names (google.rpc.Code) for each kind.
_GOOGLE_STATUS = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.REQUEST_TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorKind.TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMITED: "RESOURCE_EXHAUSTED",
    ErrorKind.INTERNAL: "INTERNAL",
    ErrorKind.UPSTREAM: "UNAVAILABLE",
    ErrorKind.UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
}


def gemini_error(kind: ErrorKind, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": kind.status,
            "message": message,
            "status": _GOOGLE_STATUS.get(kind, "INTERNAL"),
        }
    }


def _count(source: dict[str, Any], key: str) -> int:
    value = source.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_usage(metadata: Any) -> Usage | None:
    """Usage from ``usageMetadata``.

    Gemini counts thinking apart from the answer (``thoughtsTokenCount`` is not in
    ``candidatesTokenCount``) but bills both as output, so output is their sum --
    the same meaning OpenAI's completion_tokens has, reasoning included.
    """
    if not isinstance(metadata, dict):
        return None
    thoughts = _count(metadata, "thoughtsTokenCount")
    return Usage(
        input_tokens=_count(metadata, "promptTokenCount"),
        output_tokens=_count(metadata, "candidatesTokenCount") + thoughts,
        cache_read_tokens=_count(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


class Gemini(Dialect):
    name = "gemini.generate_content"
    provider_type = "gemini"
    operation = "generate_content"
    otel_provider = "gcp.gemini"

    def is_terminal(self, event: Event) -> bool:
        # Cheap text checks first: only the last chunk (or an error) can end a stream.
        if '"finishReason"' not in event.data and '"error"' not in event.data:
            return False
        chunk = loads_or_none(event.data)
        if not isinstance(chunk, dict):
            return False
        if "error" in chunk:
            return True
        candidates = chunk.get("candidates")
        return isinstance(candidates, list) and any(
            isinstance(c, dict) and c.get("finishReason") for c in candidates
        )

    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        if not path_model:
            raise BadRequest(
                "the model is part of the path: /v1beta/models/{model}:generateContent"
            )
        if not _MODEL_NAME.fullmatch(path_model):
            raise BadRequest(
                f"model name {path_model[:100]!r} is not valid: letters, digits, '.', '-' "
                "and '_' only, such as gemini-2.5-flash"
            )
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("'contents' is required and must be a non-empty array")
        config = payload.get("generationConfig")
        max_tokens = config.get("maxOutputTokens") if isinstance(config, dict) else None
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise BadRequest("'generationConfig.maxOutputTokens' must be a positive integer")
        limits.check_max_tokens(path_model, max_tokens, "generationConfig.maxOutputTokens")
        if isinstance(config, dict):
            limits.check_count(config.get("candidateCount"), limits.MAX_CANDIDATES,
                               "generationConfig.candidateCount")  # fmt: skip
        return ParsedRequest(
            model=path_model, stream=query_stream, max_tokens=max_tokens, payload=payload, raw=raw
        )

    def error_body(self, kind: ErrorKind, message: str, request_id: str | None = None) -> bytes:
        return dumps(gemini_error(kind, message))

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        # google-genai raises APIError (ClientError/ServerError by code) on a chunk whose
        # JSON starts with the "error" key.
        return encode(dumps(gemini_error(kind, message)).decode())

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        return read_usage(payload.get("usageMetadata"))

    def usage_from_json(self, payload: Any) -> Usage | None:
        # streamGenerateContent without ?alt=sse answers one JSON array of chunks.
        if isinstance(payload, list):
            usage = Usage()
            for chunk in payload:
                if isinstance(chunk, dict):
                    usage.merge(self.usage_from_payload(chunk) or Usage())
            return usage
        return self.usage_from_payload(payload) if isinstance(payload, dict) else None


class JsonArrayStream:
    """A Gemini ``data:`` event stream re-framed as ``streamGenerateContent`` without
    ``?alt=sse`` answers: one JSON array whose elements are the events' chunks (the
    REST API's default; only clients asking for ``alt=sse`` get events).

    Fed event bytes as they come (whole events or not), it returns the array's next
    bytes at once, so an array is streamed as its chunks arrive, never held whole.
    """

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.opened = False

    def feed(self, events: bytes) -> bytes:
        out = []
        for event in self.parser.feed(events):
            out.append((b",\r\n" if self.opened else b"[") + event.data.encode())
            self.opened = True
        return b"".join(out)

    def close(self) -> bytes:
        return b"]" if self.opened else b"[]"
