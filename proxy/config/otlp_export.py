"""The OTLP/HTTP span exporter, with an encoding that costs about a sixth of the stock one.

`make bench` showed the stock encoder (`opentelemetry-exporter-otlp-proto-common`)
taking ~70 us of CPU per span: it builds a protobuf ``Span``, ``KeyValue`` and
``AnyValue`` in Python for every attribute of every span, and hashes the resource (a
JSON dump) per span. At 100 % sampling that is two spans per request on the exporter
thread, which also holds the GIL the event loop needs. A span is a handful of
scalars and a list of attributes, so `encode_spans` writes the protobuf wire format
of ``ExportTraceServiceRequest`` directly: tags, lengths and fields in field-number
order, the bytes a protobuf library writes for the same message. Most attributes
repeat from request to request (operation, provider, model, arm, backend,
status...), so each distinct (key, value) is encoded once (`AttributeCache`).
Resource and scope (once per batch) and spans with events or links (rare: an
exception) take the stock encoder's protobuf path. tests/test_otlp_export.py holds
the bytes equal to the stock encoder's, so an upgrade that changes the schema fails
there, not at a collector.

Transport, retries, headers, compression and the ``OTEL_EXPORTER_OTLP_*`` variables
stay `OTLPSpanExporter`'s; only `export`'s encoding step is replaced.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_key_value,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _SPAN_KIND_MAP,
    _encode_span,
    _span_flags,
)
from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags, TraceState

log = logging.getLogger(__name__)

#: Encoded attributes kept; past this the cache starts again (keys are the code's, but
#: an SDK span may carry any).
CACHE_ENTRIES = 4096
#: Values kept per key: the repeating ones (operation, provider, model, arm, backend,
#: status...) are a handful; a key with more is one whose values hardly repeat.
VALUES_PER_KEY = 256

_INT64 = range(-(1 << 63), 1 << 63)
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")
_SMALL = [bytes((n,)) for n in range(0x80)]


def _varint(n: int) -> bytes:
    """A protobuf varint; a negative (int64) as its 64-bit two's complement."""
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message): tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes | None:
    """An ``AnyValue`` as the stock `_encode_value` builds it (oneof members are always
    written, even when zero); None: a type left to the stock encoder (mappings, ints
    past int64)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value) if value in _INT64 else None
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):  # ArrayValue {repeated AnyValue values = 1}
        items = [_any_value(item) for item in value]
        if any(item is None for item in items):
            return None
        return _field(b"\x2a", b"".join([_field(b"\x0a", item) for item in items]))  # type: ignore[arg-type]
    return None


def _attribute(key: str, value: Any) -> bytes:
    """One ``Span.attributes`` field (9): a ``KeyValue`` {key = 1, value = 2}."""
    encoded = _any_value(value)
    if encoded is None:
        try:
            stock: bytes = PBSpan(attributes=[_encode_key_value(key, value)]).SerializeToString()
        except Exception as error:  # the stock encoder's rule: log, leave it out, go on
            log.exception("OTLP span export: attribute %r left out: %s", key, error)
            return b""
        return stock
    return _key_value(_field(b"\x0a", key.encode()), encoded)


def _key_value(key_field: bytes, any_value: bytes) -> bytes:
    """The ``Span.attributes`` field of an encoded key field and ``AnyValue``."""
    key_value = key_field + b"\x12" + _varint(len(any_value)) + any_value
    return b"\x4a" + _varint(len(key_value)) + key_value


class AttributeCache:
    """Encoded ``Span.attributes`` fields by key, then by value: each distinct (key, value)
    encoded once. Two levels, so a lookup builds and hashes no tuple.

    Values cached: str, int, bool and tuples of str (hashable, and equal only when
    encoded the same), at most `VALUES_PER_KEY` of them per key: past that, a key's
    values hardly repeat (request ids, token counts) and are encoded each time, from
    the key's encoded field. Not floats: 0.0 == -0.0, and they are costs and scores,
    different every time; a float's field is its key's head and 8 bytes."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[Any, bytes]] = {}
        self._entries = 0
        #: Each key's encoded ``KeyValue.key`` field, for the values encoded each time.
        self._key_fields: dict[str, bytes] = {}
        #: A float attribute's field up to its 8 value bytes, by key: the field's length
        #: does not depend on the value, so only the value is written each time.
        self._float_heads: dict[str, bytes] = {}

    def __len__(self) -> int:
        return self._entries

    def encode(self, key: str, value: Any) -> bytes:
        kind = type(value)
        if kind is bool:  # True == 1 as a dict key: a bool is keyed apart from the ints
            value_key: Any = (bool, value)
        elif kind is str or kind is int or (kind is tuple and all(type(v) is str for v in value)):
            value_key = value
        elif kind is float:
            head = self._float_heads.get(key)
            if head is None:
                if len(self._float_heads) >= CACHE_ENTRIES:
                    self._float_heads.clear()
                head = self._float_heads[key] = _attribute(key, 0.5)[:-8]
            return head + _DOUBLE.pack(value)
        else:  # lists, bytes: encoded each time
            return _attribute(key, value)
        values = self._by_key.get(key)
        if values is None:
            values = self._by_key[key] = {}
        encoded = values.get(value_key)
        if encoded is not None:
            return encoded
        any_value = _any_value(value)
        if any_value is None:  # an int past int64: the stock encoder's rule (`_attribute`)
            encoded = _attribute(key, value)
        else:
            encoded = _key_value(self._key_field(key), any_value)
        if len(values) < VALUES_PER_KEY:
            if self._entries >= CACHE_ENTRIES:
                self._by_key.clear()
                self._entries = 0
                values = self._by_key[key] = {}
            values[value_key] = encoded
            self._entries += 1
        return encoded

    def _key_field(self, key: str) -> bytes:
        field = self._key_fields.get(key)
        if field is None:
            if len(self._key_fields) >= CACHE_ENTRIES:
                self._key_fields.clear()
            field = self._key_fields[key] = _field(b"\x0a", key.encode())
        return field

    def fields(self, attributes: Mapping[str, Any]) -> list[bytes]:
        """`encode` of each attribute, with the common case (a str or int seen before)
        inline: this loop is most of the exporter thread's work."""
        out = []
        by_key = self._by_key
        for key, value in attributes.items():
            kind = type(value)
            values = by_key.get(key) if kind is str or kind is int else None
            encoded = values.get(value) if values is not None else None
            out.append(self.encode(key, value) if encoded is None else encoded)
        return out


def span_message(
    trace_id: int, span_id: int, trace_state: TraceState | None, parent_id: int | None,
    parent_remote: bool, name: str, kind: SpanKind, start: int | None, end: int | None,
    attributes: Iterable[bytes], status: Status | None, dropped_attributes: int = 0,
) -> bytes:  # fmt: skip
    """A ``Span`` message, its fields in field-number order, zero values left out (proto3).

    `parent_id`: None for a root span; `attributes`: each one's encoded field
    (`AttributeCache.encode`)."""
    parts = [
        b"\x0a\x10", trace_id.to_bytes(16, "big"),  # trace_id = 1
        b"\x12\x08", span_id.to_bytes(8, "big"),  # span_id = 2
    ]  # fmt: skip
    if trace_state:  # trace_state = 3
        state = ",".join([f"{key}={value}" for key, value in trace_state.items()])
        parts.append(_field(b"\x1a", state.encode()))
    if parent_id is not None:  # parent_span_id = 4
        parts += (b"\x22\x08", parent_id.to_bytes(8, "big"))
    if name:  # name = 5
        parts.append(_name_field(name))
    if kind_field := _KIND_FIELDS[kind._value_]:  # kind = 6
        parts.append(kind_field)
    if start:  # start_time_unix_nano = 7, fixed64
        parts += (b"\x39", _FIXED64.pack(start))
    if end:  # end_time_unix_nano = 8, fixed64
        parts += (b"\x41", _FIXED64.pack(end))
    parts += attributes  # attributes = 9
    if dropped_attributes:  # dropped_attributes_count = 10
        parts += (b"\x50", _varint(dropped_attributes))
    if status is not None:  # status = 15
        parts.append(_status_field(status.status_code.value, status.description))
    parts.append(_FLAGS_FIELDS[parent_id is not None and parent_remote])  # flags = 16
    return b"".join(parts)


#: Each span kind's ``kind`` field (6; empty: the zero value, not written), by the
#: kind's value: an Enum member as a dict key costs a Python-level ``__hash__``.
_KIND_FIELDS = {
    kind._value_: b"\x30" + _varint(code) if code else b"" for kind, code in _SPAN_KIND_MAP.items()
}

#: The ``flags`` field (16, fixed32) of a span whose parent is remote (True) or not:
#: what the stock `_span_flags` computes.
_FLAGS_FIELDS = {
    remote: b"\x85\x01" + _FIXED32.pack(_span_flags(SpanContext(1, 1, is_remote=remote)))
    for remote in (False, True)
}


@functools.lru_cache(maxsize=256)
def _name_field(name: str) -> bytes:
    """The ``name`` field (5): a span's name repeats (``chat gpt-4o-mini``, ``attempt openai``)."""
    return _field(b"\x2a", name.encode())


@functools.lru_cache(maxsize=64)
def _status_field(code: int, description: str | None) -> bytes:
    """The ``status`` field (15): a ``Status`` {message = 2, code = 3}."""
    message = description.encode() if description else b""
    body = (_field(b"\x12", message) if message else b"") + (
        b"\x18" + _varint(code) if code else b""
    )
    return _field(b"\x7a", body)


class SpanRecord(NamedTuple):
    """A span the sidecar recorded, as its event loop hands it to the batch processor.

    The SDK's `ReadableSpan` would cost the loop a `SpanContext` per span and a dozen
    attribute writes, for fields only the exporter thread reads; a tuple is one
    allocation, and `as_readable` makes the SDK's span from it when one is needed."""

    name: str
    trace_id: int
    span_id: int
    trace_state: TraceState | None
    parent_id: int | None  # None: a root span
    parent_remote: bool  # the parent is the app's (a continued ``traceparent``)
    kind: SpanKind
    attributes: dict[str, Any]
    start: int
    end: int
    status: Status
    events: tuple[Event, ...]  # an ``exception`` event, or none
    resource: Resource
    scope: InstrumentationScope

    def as_readable(self) -> ReadableSpan:
        """The SDK's span holding the same facts (what the stock encoder encodes)."""
        flags = TraceFlags(TraceFlags.SAMPLED)
        parent = None
        if self.parent_id is not None:
            parent = SpanContext(self.trace_id, self.parent_id, self.parent_remote, flags)
        return ReadableSpan(
            self.name, SpanContext(self.trace_id, self.span_id, False, flags, self.trace_state),
            parent, self.resource, self.attributes, self.events, kind=self.kind,
            status=self.status, start_time=self.start, end_time=self.end,
            instrumentation_scope=self.scope,
        )  # fmt: skip


#: A `SpanRecord` from a tuple of its fields, in field order: what calling the class does,
#: without the Python-level ``__new__`` a NamedTuple's call goes through (the event loop
#: makes two records per request).
new_record: Callable[[tuple[Any, ...]], SpanRecord] = functools.partial(tuple.__new__, SpanRecord)


def _span(span: ReadableSpan | SpanRecord, cache: AttributeCache) -> bytes:
    """`span`'s ``Span`` message: written by `span_message`, or by the stock encoder when
    it has events or links. Reads `ReadableSpan`'s fields, not its properties, where
    those copy them on every read (``tuple(events)``, a ``MappingProxyType``)."""
    if isinstance(span, SpanRecord):  # the sidecar's (a tuple: unpacked, not looked up)
        name, trace_id, span_id, state, parent_id, remote, kind, attributes, start, end, \
            status, events, _, _ = span  # fmt: skip
        if events:
            return _span(span.as_readable(), cache)
        return span_message(
            trace_id, span_id, state, parent_id, remote, name, kind, start, end,
            cache.fields(attributes), status,
        )  # fmt: skip
    if span._events or span._links or span.dropped_events or span.dropped_links:
        stock: bytes = _encode_span(span).SerializeToString()
        return stock
    context, parent = span.context, span.parent
    assert context is not None  # an ended SDK span always has one
    return span_message(
        context.trace_id, context.span_id, context.trace_state,
        None if parent is None else parent.span_id, parent is not None and parent.is_remote,
        span.name, span.kind, span.start_time, span.end_time,
        cache.fields(span._attributes or {}), span.status, span.dropped_attributes,
    )  # fmt: skip


def encode_spans(spans: Sequence[ReadableSpan | SpanRecord], cache: AttributeCache) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of `spans`, grouped by resource and
    instrumentation scope as the stock encoder groups them."""
    groups: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]]
    groups = {}
    scope: InstrumentationScope | None
    group: tuple[Resource | None, InstrumentationScope | None] = (None, None)
    encoded: list[bytes] = []
    for span in spans:
        if isinstance(span, SpanRecord):
            resource, scope = span.resource, span.scope
        else:
            resource, scope = span.resource, span.instrumentation_scope or None
        if resource is not group[0] or scope is not group[1]:
            # Another group than the span before's (rare: a batch is mostly one group).
            by_scope = groups.setdefault(id(resource), (resource, {}))[1]
            encoded = by_scope.setdefault(id(scope), (scope, []))[1]
            group = (resource, scope)
        encoded.append(_span(span, cache))
    request = []  # ExportTraceServiceRequest {repeated ResourceSpans resource_spans = 1}
    for resource, by_scope in groups.values():
        # ResourceSpans {resource = 1, repeated ScopeSpans scope_spans = 2, schema_url = 3}
        resource_spans = [_field(b"\x0a", _encode_resource(resource).SerializeToString())]
        for scope, scope_encoded in by_scope.values():
            # ScopeSpans {scope = 1, repeated Span spans = 2, schema_url = 3}
            scope_spans = [_field(b"\x0a", _scope(scope))]
            scope_spans += [_field(b"\x12", span) for span in scope_encoded]
            if scope is not None and scope.schema_url:
                scope_spans.append(_field(b"\x1a", scope.schema_url.encode()))
            resource_spans.append(_field(b"\x12", b"".join(scope_spans)))
        if resource.schema_url:
            resource_spans.append(_field(b"\x1a", resource.schema_url.encode()))
        request.append(_field(b"\x0a", b"".join(resource_spans)))
    return b"".join(request)


def _scope(scope: InstrumentationScope | None) -> bytes:
    encoded: bytes = _encode_instrumentation_scope(scope).SerializeToString()  # type: ignore[arg-type]  # None: empty
    return encoded


class CachingOTLPSpanExporter(OTLPSpanExporter):
    """`OTLPSpanExporter` with `encode_spans` as its encoding step."""

    def __init__(self) -> None:
        super().__init__()
        self._attribute_cache = AttributeCache()

    def export(self, spans: Sequence[ReadableSpan | SpanRecord]) -> SpanExportResult:
        """The stock `export` with `encode_spans` as its encoding step; the rest as it does:
        an encoding failure or a batch over the exporter's request-size limit is dropped
        with a log line, and a failed send is reported with its HTTP status."""
        if self._shutdown:
            log.warning("OTLP span exporter already shut down: %d spans dropped", len(spans))
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                body = encode_spans(spans, self._attribute_cache)
            except Exception as error:  # the stock exporter's rule: log, drop, go on
                log.error("OTLP span export: encoding a batch failed: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(body, self._max_request_size):
                log.warning("OTLP span export: a batch of %d bytes is over the %d-byte "
                            "limit; dropped", len(body), self._max_request_size)  # fmt: skip
                result.error = RequestPayloadTooLargeError(
                    f"serialized span request of {len(body)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes"
                )
                return SpanExportResult.FAILURE
            sent = self._client.export(body)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
