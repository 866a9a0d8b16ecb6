"""The OTLP/HTTP span exporter, with an encoding that costs a quarter of the stock one.

`make bench` showed the stock encoder (`opentelemetry-exporter-otlp-proto-common`)
taking ~50 us of CPU per span: it builds a protobuf ``KeyValue`` and ``AnyValue`` in
Python for every attribute of every span, and hashes the resource (a JSON dump) per
span. At 100 % sampling that is two spans per request on the exporter thread, which
also holds the GIL the event loop needs. Most attributes repeat from request to
request (operation, provider, model, arm, backend, status...), so each distinct
(key, value) is encoded once, as the serialized bytes of a ``Span`` holding only that
attribute; a span's attributes are then one ``MergeFromString`` of their
concatenation (protobuf appends repeated fields on merge). Everything else is the
same protobuf messages the stock encoder builds, so a collector receives the same
``ExportTraceServiceRequest`` (tests/test_otlp_export.py compares them). Spans with
events or links (rare: an exception) take the stock encoder's path.

Transport, retries, headers, compression and the ``OTEL_EXPORTER_OTLP_*`` variables
stay `OTLPSpanExporter`'s; only `export`'s encoding step is replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_key_value,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _SPAN_KIND_MAP,
    _encode_span,
    _encode_trace_state,
    _span_flags,
)
from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

log = logging.getLogger(__name__)

#: Encoded attributes kept; past this the cache starts again (unique values such as
#: request ids would otherwise grow it for ever).
CACHE_ENTRIES = 4096

#: Value types cached: hashable, and equal only when encoded the same (floats are
#: not: 0.0 == -0.0; and they are costs and scores, different every time).
_CACHED_TYPES = (str, int, bool, tuple)


class AttributeCache:
    """(key, value) -> the serialized ``Span`` that holds just that attribute."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[str, type, Any], bytes] = {}

    def encode(self, key: str, value: Any) -> bytes:
        if not isinstance(value, _CACHED_TYPES) or (
            isinstance(value, tuple) and not all(isinstance(v, str) for v in value)
        ):
            return _one_attribute(key, value)
        entry = (key, type(value), value)
        encoded = self._encoded.get(entry)
        if encoded is None:
            if len(self._encoded) >= CACHE_ENTRIES:
                self._encoded.clear()
            encoded = self._encoded[entry] = _one_attribute(key, value)
        return encoded


def _one_attribute(key: str, value: Any) -> bytes:
    encoded: bytes = PBSpan(attributes=[_encode_key_value(key, value)]).SerializeToString()
    return encoded


def encode_spans(spans: Sequence[ReadableSpan], cache: AttributeCache) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of `spans`, grouped by resource and
    instrumentation scope as the stock encoder groups them."""
    request = ExportTraceServiceRequest()
    scopes: dict[tuple[int, int], ScopeSpans] = {}
    resources: dict[int, Any] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        group = scopes.get((id(resource), id(scope)))
        if group is None:
            resource_spans = resources.get(id(resource))
            if resource_spans is None:
                resource_spans = resources[id(resource)] = request.resource_spans.add(
                    resource=_encode_resource(resource), schema_url=resource.schema_url
                )
            group = scopes[id(resource), id(scope)] = resource_spans.scope_spans.add(
                scope=_encode_instrumentation_scope(scope),  # type: ignore[arg-type]  # None: empty
                schema_url=scope.schema_url if scope else None,
            )
        if span.events or span.links:
            group.spans.append(_encode_span(span))
            continue
        context, parent, status = span.get_span_context(), span.parent, span.status
        assert context is not None  # an ended SDK span always has one
        encoded = group.spans.add(
            trace_id=context.trace_id.to_bytes(16, "big"),
            span_id=context.span_id.to_bytes(8, "big"),
            trace_state=_encode_trace_state(context.trace_state),
            parent_span_id=parent.span_id.to_bytes(8, "big") if parent else None,
            name=span.name,
            kind=_SPAN_KIND_MAP[span.kind],
            start_time_unix_nano=span.start_time,
            end_time_unix_nano=span.end_time,
            dropped_attributes_count=span.dropped_attributes,
            flags=_span_flags(parent),
        )
        encoded.status.code = status.status_code.value
        if status.description:
            encoded.status.message = status.description
        if span.attributes:
            encoded.MergeFromString(
                b"".join([cache.encode(k, v) for k, v in span.attributes.items()])
            )
    serialized: bytes = request.SerializePartialToString()
    return serialized


class CachingOTLPSpanExporter(OTLPSpanExporter):
    """`OTLPSpanExporter` with `encode_spans` as its encoding step."""

    def __init__(self) -> None:
        super().__init__()
        self._attribute_cache = AttributeCache()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
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
