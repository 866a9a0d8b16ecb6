"""The sidecar's OTLP encoding sends a collector exactly what the stock encoder sends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.config import otlp_export
from proxy.config.otlp_export import AttributeCache, SpanRecord, encode_spans


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += spans
        return SpanExportResult.SUCCESS


def _spans(requests: int) -> list[ReadableSpan]:
    """Spans shaped like the sidecar's, from two tracers and two resources: a request
    continuing an app's trace, an attempt that failed, one that answered; one span
    with an exception event, as `RequestTrace.end` records on an error."""
    kept = Keep()
    for service in ("sidecar-a", "sidecar-b"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(kept))
        for scope in ("llm-rollout-proxy", "other"):
            tracer = provider.get_tracer(scope, "1.0", schema_url="https://example/schema")
            for number in range(requests):
                app = TraceContextTextMapPropagator().extract({
                    "traceparent": f"00-{number + 1:032x}-{number + 7:016x}-01",
                    "tracestate": "vendor=value",
                })  # fmt: skip
                span = tracer.start_span("chat", app, SpanKind.SERVER)
                parent = set_span_in_context(span)
                failed = tracer.start_span("attempt", parent, SpanKind.CLIENT, {"a": 1})
                failed.set_status(Status(StatusCode.ERROR, "429"))
                failed.end()
                answered = tracer.start_span("attempt", parent, SpanKind.CLIENT, {"a": 2})
                answered.set_attribute("http.response.status_code", 200)
                answered.end()
                if number == 1:
                    span.record_exception(TimeoutError("upstream"))
                span.set_attributes({
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": f"model-{number % 3}",
                    "gen_ai.response.finish_reasons": ["stop", "length"],
                    "gen_ai.usage.input_tokens": number,
                    "llm_rollout.cost_usd": number / 7,
                    "llm_rollout.stream": number % 2 == 0,
                    "llm_rollout.request_id": f"req-{number}",
                })  # fmt: skip
                span.end()
    return kept.spans


def test_the_encoding_is_the_bytes_the_stock_encoder_sends() -> None:
    spans = _spans(6)
    cache = AttributeCache()
    for _ in range(2):  # the second time from the cache
        ours = encode_spans(spans, cache)
        assert ours == stock_encode(spans).SerializeToString()
        assert ExportTraceServiceRequest.FromString(ours) == stock_encode(spans)


def _record(span: ReadableSpan) -> SpanRecord:
    """The sidecar's record of the same facts as an SDK span of `_spans`."""
    context, parent = span.context, span.parent
    assert context is not None
    assert span.start_time
    assert span.end_time
    assert span.instrumentation_scope is not None
    return SpanRecord(
        span.name, context.trace_id, context.span_id, context.trace_state or None,
        None if parent is None else parent.span_id, parent is not None and parent.is_remote,
        span.kind, dict(span.attributes or {}), span.start_time, span.end_time, span.status,
        tuple(span.events), span.resource, span.instrumentation_scope,
    )  # fmt: skip


def test_the_sidecars_span_records_are_encoded_as_the_sdk_spans_they_stand_for() -> None:
    """The loop hands the exporter `SpanRecord`s, not SDK spans: a collector gets the same
    bytes (a request continuing an app's trace with its tracestate, attempts that failed
    and answered, an exception event, two resources and scopes), alone or mixed with the
    SDK's spans in a batch, and `as_readable` gives back the span it was made from."""
    spans = _spans(6)
    records = [_record(span) for span in spans]
    cache = AttributeCache()
    for _ in range(2):  # the second time from the cache
        assert encode_spans(records, cache) == stock_encode(spans).SerializeToString()
    mixed = [
        record if n % 2 else span
        for n, (span, record) in enumerate(zip(spans, records, strict=True))
    ]
    assert encode_spans(mixed, cache) == stock_encode(spans).SerializeToString()
    readable = [record.as_readable() for record in records]
    assert stock_encode(readable).SerializeToString() == stock_encode(spans).SerializeToString()


#: Attribute values of every type OpenTelemetry allows, and the edges of their encoding:
#: zero and negative varints, multi-byte lengths, non-ASCII text, arrays of each type.
ODD_VALUES: list[Any] = [
    True, False, 0, 1, -1, 127, 128, 2**63 - 1, -(2**63), 0.0, -0.0, 1.5, float("inf"),
    "", "x" * 300, "naïve ✓", b"\x00\xff", ["a", "b"], [1, -2], [True], [0.5], [], ("t",),
    ["mixed", 1],
]  # fmt: skip


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_every_attribute_type_is_encoded_as_the_stock_encoder_does(value: Any) -> None:
    span = _spans(1)[0]
    span._attributes = {"odd": value, "after": "still there"}
    for cache in (AttributeCache(), AttributeCache()):
        assert encode_spans([span, span], cache) == stock_encode([span, span]).SerializeToString()


def test_an_attribute_the_stock_encoder_cannot_encode_is_left_out_as_it_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An int past int64 cannot be an ``AnyValue``: the stock encoder logs it and sends the
    span without it, and so does the sidecar's."""
    span = _spans(1)[0]
    span._attributes = {"huge": 2**64, "kept": 1}
    assert encode_spans([span], AttributeCache()) == stock_encode([span]).SerializeToString()
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span], AttributeCache()))
    (only,) = [s for r in decoded.resource_spans for g in r.scope_spans for s in g.spans]
    assert [a.key for a in only.attributes] == ["kept"]
    assert "huge" in caplog.text


def test_the_attribute_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _spans(40)
    cache = AttributeCache()
    monkeypatch.setattr(otlp_export, "CACHE_ENTRIES", 16)
    for _ in range(3):
        assert ExportTraceServiceRequest.FromString(encode_spans(spans, cache)) == (
            stock_encode(spans)
        )
        assert len(cache) <= 16


def test_a_key_whose_values_never_repeat_is_encoded_each_time_not_kept() -> None:
    """Request ids and token counts differ on every span: past `VALUES_PER_KEY` their
    values are encoded without being kept, with the same bytes, and the repeating
    attributes stay cached."""
    spans = _spans(otlp_export.VALUES_PER_KEY + 40)
    for number, span in enumerate(spans):
        if span.name == "chat":
            span._attributes = {**(span._attributes or {}), "gen_ai.usage.output_tokens": number}
    cache = AttributeCache()
    for _ in range(2):
        assert encode_spans(spans, cache) == stock_encode(spans).SerializeToString()
    kept = cache._by_key
    assert len(kept["llm_rollout.request_id"]) == otlp_export.VALUES_PER_KEY
    assert len(kept["gen_ai.usage.output_tokens"]) == otlp_export.VALUES_PER_KEY
    assert set(kept["gen_ai.operation.name"]) == {"chat"}


def test_a_batch_over_the_request_size_limit_is_dropped_not_sent(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the stock exporter does: a batch too large for the collector is dropped with a
    warning saying so, never sent (the endpoint here has nobody listening)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    exporter = otlp_export.CachingOTLPSpanExporter()
    exporter._max_request_size = 64
    spans = _spans(2)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert "over the 64-byte limit; dropped" in caplog.text
    exporter.shutdown()
