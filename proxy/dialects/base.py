"""What every dialect provides: parsing, its error shapes, usage reading.

A dialect is the wire format one SDK speaks (OpenAI chat, Anthropic messages, ...).
Everything here is pure: the server hands a dialect bytes and gets back facts
(model, stream?, max tokens) or bytes (an error body in the client's own shape),
so principle 1 of DESIGN.md -- every answer in the client's dialect -- is kept by
construction rather than by each handler remembering it.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import unquote

from proxy.config import ProviderType
from proxy.sse import Event

#: In a raw path: a delimiter written encoded, to slip past the router as data.
_ENCODED_DELIMITER = re.compile(r"%(2[fF]|3[fF]|23|5[cC])")
#: In a decoded path: what no provider path holds.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f?#\\]")


class ErrorKind(Enum):
    """The kinds of failure a client can be told about, with their HTTP status."""

    INVALID_REQUEST = 400
    AUTHENTICATION = 401
    PERMISSION = 403
    NOT_FOUND = 404
    REQUEST_TIMEOUT = 408
    TOO_LARGE = 413
    RATE_LIMITED = 429
    INTERNAL = 500
    UPSTREAM = 502
    UNAVAILABLE = 503
    TIMEOUT = 504
    OVERLOADED = 529

    @property
    def status(self) -> int:
        return self.value

    @classmethod
    def for_status(cls, status: int) -> ErrorKind:
        for kind in cls:
            if kind.value == status:
                return kind
        return cls.INVALID_REQUEST if status < 500 else cls.INTERNAL


class BadRequest(Exception):
    """The client's request cannot be served; becomes a 4xx in its dialect."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Usage:
    """Token counts of one answer, in the provider-neutral names pricing uses."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def merge(self, other: Usage) -> None:
        """Take every count `other` reports (later stream events supersede earlier)."""
        for name in self.__slots__:
            value = getattr(other, name)
            if value:
                setattr(self, name, value)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What routing and the mock need to know of a request; the body stays bytes."""

    model: str
    stream: bool
    max_tokens: int | None
    payload: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)


class StreamFilter(Protocol):
    """Rewrites a relayed stream chunk by chunk: `feed` returns what to send on now
    (possibly nothing, while an event is incomplete), `close` what is left at the end."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class Dialect(ABC):
    #: Short name used in metrics and logs, e.g. ``openai.chat``.
    name: str
    #: The provider type whose API speaks this dialect natively.
    provider_type: ProviderType
    #: The part of the request path that the SDK's base URL already holds
    #: (OpenAI's base URL ends in ``/v1``); stripped before joining the provider's baseURL.
    sdk_prefix: str = ""
    #: OpenTelemetry GenAI attributes: gen_ai.operation.name and gen_ai.provider.name.
    operation: str = "chat"
    otel_provider: str

    @abstractmethod
    def is_terminal(self, event: Event) -> bool:
        """Whether a stream event is the one a complete stream ends with.

        A stream that closes before it is a cut, and the client is told so.
        """

    def is_error_event(self, event: Event) -> bool:
        """Whether a stream event is the provider's own report that the stream failed.

        It reaches the client as it is (the SDK raises on it), so the relay adds no
        error of its own, but counts the stream as failed. OpenAI chat and Gemini
        send ``{"error": {...}}`` as a data chunk; other dialects name an event.
        """
        return event.data.startswith('{"error"')

    def parse(
        self, body: bytes, path_model: str | None = None, query_stream: bool = False
    ) -> ParsedRequest:
        """Parse a request body; `path_model`/`query_stream` come from the URL for Gemini."""
        payload = load_json_object(body)
        return self.describe(payload, body, path_model, query_stream)

    @abstractmethod
    def describe(
        self, payload: dict[str, Any], raw: bytes, path_model: str | None, query_stream: bool
    ) -> ParsedRequest:
        """The routing facts of a parsed JSON body; raise `BadRequest` when it is unusable."""

    @abstractmethod
    def error_body(self, kind: ErrorKind, message: str, request_id: str | None = None) -> bytes:
        """A complete error response body in this dialect."""

    @abstractmethod
    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        """The SSE event that tells this dialect's SDK the stream failed."""

    @abstractmethod
    def usage_from_payload(self, payload: dict[str, Any], event: str | None = None) -> Usage | None:
        """Usage from a whole answer body or from one stream event's JSON, if it carries any."""

    def upstream_body(self, request: ParsedRequest) -> tuple[bytes, StreamFilter | None]:
        """The body to send the provider, and the filter its stream must pass through.

        Bytes through: the request as the app sent it, answered as the provider
        answers. A dialect whose streams report usage only when asked overrides this
        to ask, and filters out what asking added (`StreamFilter`).
        """
        return request.raw, None

    def auth_headers(self, key: str) -> dict[str, str]:
        """Headers that carry the sidecar's provider key."""
        return {"Authorization": f"Bearer {key}"}

    def upstream_target(self, raw_path: str, raw_query: str) -> str:
        """The path and query to send the provider, from the request's *raw* ones.

        Built from the bytes as they came, never from a decoded form (decoding and
        re-joining is how ``model%2F..%2Fadmin`` becomes another endpoint and
        ``alt=sse%26key%3Dx`` a second parameter). A path that decodes to another
        path -- encoded ``/``, ``?`` or ``#``, dot segments, control characters --
        is refused. The app's ``key`` parameter (Gemini's credential) is dropped.
        """
        decoded = unquote(raw_path)
        if (
            _ENCODED_DELIMITER.search(raw_path)
            or _UNSAFE_CHARS.search(decoded)
            or "//" in decoded
            or any(segment in (".", "..") for segment in decoded.split("/"))
        ):
            raise BadRequest(
                f"the request path {raw_path[:200]!r} is not one this API accepts: "
                "no encoded '/', '?' or '#', dot segments or control characters"
            )
        kept = [part for part in raw_query.split("&")
                if part and unquote(part.partition("=")[0]) != "key"]  # fmt: skip
        path = raw_path.removeprefix(self.sdk_prefix)
        return f"{path}?{'&'.join(kept)}" if kept else path

    def usage_from_event(self, event: Event) -> Usage | None:
        """Usage from one stream event, parsing JSON only for events that can hold it."""
        if "sage" not in event.data:  # "usage", "usageMetadata"
            return None
        payload = loads_or_none(event.data)
        return self.usage_from_payload(payload, event.event) if isinstance(payload, dict) else None

    def usage_from_body(self, body: bytes) -> Usage | None:
        return self.usage_from_json(loads_or_none(body))

    def usage_from_json(self, payload: Any) -> Usage | None:
        """Usage from a whole answer already parsed (`loads_or_none`; None: not JSON)."""
        return self.usage_from_payload(payload) if isinstance(payload, dict) else None


def loads_or_none(text: bytes | str) -> Any:
    """A provider's answer as JSON, or None when it is not JSON (it is read, not judged)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


#: JSON nesting a request body may have (see `proxy.dialects.limits`).
MAX_JSON_DEPTH = 64


def load_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        payload = None  # nested deeper than the parser goes: refused below
    # Counting brackets is C-speed; only a body with enough of them is walked.
    if payload is None or (
        body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper(payload)
    ):
        raise BadRequest(
            f"request body nests JSON more than {MAX_JSON_DEPTH} levels deep; "
            "no provider accepts that"
        )
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    return payload


def _deeper(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests deeper than `limit` (iterative: no recursion to blow)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def require_str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{name}' is required and must be a non-empty string")
    return value


def optional_int(payload: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer")
        return value
    return None


def ints(source: Any, **names: str) -> Usage:
    """A `Usage` from a mapping, reading `Usage` field -> source key (missing or odd is 0)."""
    usage = Usage()
    if not isinstance(source, dict):
        return usage
    for target, key in names.items():
        value: Any = source
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(usage, target, value)
    return usage


#: Built once: `json.dumps` with separators builds an encoder per call, a sixth of the
#: time of dumping a small stream chunk, paid for every chunk a translation writes.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact(payload: Any) -> str:
    """`payload` as JSON text without spaces, as the providers send it."""
    return _COMPACT.encode(payload)


def dumps(payload: Any) -> bytes:
    return _COMPACT.encode(payload).encode()
