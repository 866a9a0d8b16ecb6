"""OpenAI embeddings: ``POST /v1/embeddings`` (never streams)."""

from __future__ import annotations

from typing import Any

from proxy.dialects import limits
from proxy.dialects.base import (
    BadRequest,
    ParsedRequest,
    Usage,
    ints,
    optional_int,
    require_str,
)
from proxy.dialects.openai_chat import OpenAIDialect
from proxy.sse import Event

ENCODINGS = ("float", "base64")


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def check_input(value: Any) -> None:
    """OpenAI's accepted shapes: a string, strings, a token array, token arrays; none empty."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif _is_tokens(value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise BadRequest("'input' is required: a string, an array of strings or token arrays")
    for item in items:
        if isinstance(item, str):
            if not item:
                raise BadRequest("'input' must not contain empty strings")
        elif not _is_tokens(item):
            raise BadRequest("'input' items must be non-empty strings or token arrays")


class OpenAIEmbeddings(OpenAIDialect):
    name = "openai.embeddings"
    operation = "embeddings"

    def is_terminal(self, event: Event) -> bool:
        return False  # embeddings never stream; an event stream here is not an answer

    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        model = require_str(payload, "model")
        check_input(payload.get("input"))
        encoding = payload.get("encoding_format", "float")
        if encoding not in ENCODINGS:
            raise BadRequest("'encoding_format' must be 'float' or 'base64'")
        given = payload.get("input")
        inputs = len(given) if isinstance(given, list) and not _is_tokens(given) else 1
        limits.check_embeddings(model, optional_int(payload, "dimensions"), inputs)
        return ParsedRequest(model=model, stream=False, max_tokens=None, payload=payload, raw=raw)

    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            return None
        return ints(usage, input_tokens="prompt_tokens")
