"""OpenTelemetry GenAI spans, exported over OTLP/HTTP to a local receiver and decoded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from google import genai
from google.genai import types
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.dialects import OpenAIChat
from proxy.server.serve import Sidecar
from proxy.server.tracing import Tracing, answer_facts, propagate
from tests.conftest import (
    APP_KEY,
    StartSidecar,
    anthropic_client,
    openai_client,
    real_spec,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.otlp import OTLPReceiver

APP_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{APP_TRACE}-b7ad6b7169203331-01"
PROMPT = "Tell me the secret plan"
ASK = [{"role": "user", "content": PROMPT}]


@pytest.fixture
async def otlp(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OTLPReceiver]:
    receiver = await OTLPReceiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0k")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=app-0")
    yield receiver
    await receiver.stop()


async def exported(sidecar: Sidecar) -> None:
    """Export now (the batch processor blocks, so off the loop the receiver runs on)."""
    assert sidecar.runtime.tracing is not None, "an OTLP endpoint is set: tracing is on"
    await asyncio.to_thread(sidecar.runtime.tracing.flush)


Call = Callable[[Sidecar], Awaitable[Any]]


async def _chat(sidecar: Sidecar) -> Any:
    return await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini", messages=ASK, extra_headers={"traceparent": TRACEPARENT}
    )  # type: ignore[arg-type]


async def _responses(sidecar: Sidecar) -> Any:
    return await openai_client(sidecar).responses.create(
        model="gpt-4o-mini", input=PROMPT, extra_headers={"traceparent": TRACEPARENT}
    )


async def _embeddings(sidecar: Sidecar) -> Any:
    return await openai_client(sidecar).embeddings.create(
        model="text-embedding-3-small", input=PROMPT, extra_headers={"traceparent": TRACEPARENT}
    )


async def _anthropic(sidecar: Sidecar) -> Any:
    return await anthropic_client(sidecar).messages.create(
        model="claude-sonnet-5", max_tokens=64, messages=ASK,  # type: ignore[arg-type]
        extra_headers={"traceparent": TRACEPARENT},
    )  # fmt: skip


def _gemini_client(sidecar: Sidecar) -> genai.Client:
    return genai.Client(
        api_key=APP_KEY,
        http_options=types.HttpOptions(
            base_url=f"http://127.0.0.1:{sidecar.data_port}", headers={"traceparent": TRACEPARENT}
        ),
    )


async def _gemini(sidecar: Sidecar) -> Any:
    client = _gemini_client(sidecar)
    async with client.aio as aio:
        return await aio.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)


#: dialect call, span name, gen_ai.provider.name, whether the answer has a finish reason
DIALECTS = [
    (_chat, "chat gpt-4o-mini", "openai", True),
    (_responses, "chat gpt-4o-mini", "openai", True),
    (_embeddings, "embeddings text-embedding-3-small", "openai", False),
    (_anthropic, "chat claude-sonnet-5", "anthropic", True),
    (_gemini, "generate_content gemini-2.5-flash", "gcp.gemini", True),
]


@pytest.fixture(params=["real", "mock"])
async def on_arm(
    request: pytest.FixtureRequest,
    start_sidecar: StartSidecar,
    otlp: OTLPReceiver,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    fake_gemini: FakeGemini,
) -> tuple[Sidecar, str]:
    """A traced sidecar sending every dialect to one arm: real (the fakes) or mock."""
    arm = str(request.param)
    spec = real_spec(fake_openai, fake_anthropic, 100 if arm == "real" else 0, fake_gemini)
    return await start_sidecar(spec), arm


async def test_every_dialect_and_arm_exports_a_genai_span_in_the_apps_trace(
    on_arm: tuple[Sidecar, str], otlp: OTLPReceiver
) -> None:
    sidecar, arm = on_arm
    for call, *_ in DIALECTS:
        await call(sidecar)
    await exported(sidecar)
    spans = otlp.requests()
    assert len(spans) == len(DIALECTS), [s.name for s in otlp.spans]
    for span, (_, name, provider, finishes) in zip(spans, DIALECTS, strict=True):
        attributes = span.attributes
        assert span.name == name
        assert span.trace_id == APP_TRACE, "the app's trace is continued"
        assert attributes["gen_ai.provider.name"] == provider
        assert attributes["gen_ai.request.model"] == name.split(" ")[1]
        assert attributes["gen_ai.operation.name"] == name.split(" ")[0]
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert "gen_ai.usage.output_tokens" in attributes
        assert attributes["gen_ai.response.model"]
        if finishes:
            assert attributes["gen_ai.response.finish_reasons"], name
        assert attributes["llm_rollout.arm"] == arm
        assert attributes["llm_rollout.tenant"] == "none"
        assert len(attributes["llm_rollout.request_id"]) == 32
        assert attributes["http.response.status_code"] == 200
        if finishes:  # scored once the app had the answer; the span waited for it
            assert 0 <= attributes["llm_rollout.quality_score"] <= 5  # the rubric's scale
        else:
            assert "llm_rollout.quality_score" not in attributes, "an embedding is not scored"
        children = {child.name for child in otlp.children(span)}
        if arm == "real":
            assert attributes["llm_rollout.backend"].endswith("-primary")
            assert attributes["llm_rollout.route_reason"] == "weight"
            assert attributes["server.address"] == "127.0.0.1"
            assert "llm_rollout.cost_usd" in attributes
            assert children == {f"attempt {attributes['llm_rollout.backend']}"}, "no cap: no hold"
        else:
            assert attributes["llm_rollout.backend"] == "mock"
            assert children == {"mock"}
        assert span.resource["service.name"] == "llm-rollout-proxy"
        assert span.resource["k8s.pod.name"] == "app-0", "OTEL_RESOURCE_ATTRIBUTES applied"
    assert otlp.headers[0]["x-collector-token"] == "t0k", "OTEL_EXPORTER_OTLP_HEADERS applied"
    everything = repr(otlp.spans)
    assert PROMPT not in everything, "no prompt in spans unless content capture is on"
    for key in (
        "sk-real-openai-test-0000000000",
        "sk-ant-real-test-000000000000",
        "AIzaRealGeminiTestKey000000000000000000",
        APP_KEY,
    ):
        assert key not in everything


async def test_retries_and_fallback_are_child_spans_and_the_provider_gets_the_attempts_span(
    start_sidecar: StartSidecar, otlp: OTLPReceiver, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(fake_openai) | {"retry": {"maxAttempts": 2, "initialBackoffMs": 1},
                                     "fallback": ["openai-primary", "mock"],
                                     "budget": {"dailyUSD": "100"}}  # fmt: skip
    sidecar = await start_sidecar(spec)
    fake_openai.faults.extend([Fault(status=503), Fault(status=503)])
    await _chat(sidecar)  # both attempts refused: the mock answers
    fake_openai.faults.append(Fault(status=503))
    await _chat(sidecar)  # retried once, answered by the provider
    await exported(sidecar)
    fell_back, retried = otlp.requests()
    assert fell_back.attributes["llm_rollout.backend"] == "mock"
    assert fell_back.attributes["llm_rollout.arm"] == "real"
    attempts = sorted(
        (s for s in otlp.children(fell_back) if s.name.startswith("attempt")),
        key=lambda s: s.attributes["llm_rollout.attempt"],
    )
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 503]
    assert all(a.error for a in attempts), "a refused attempt is an error span"
    assert {"mock", "budget hold"} <= {s.name for s in otlp.children(fell_back)}
    assert fell_back.trace_id == APP_TRACE
    sent = fake_openai.requests[-1].headers["traceparent"]
    (answered,) = [s for s in otlp.children(retried) if s.name.startswith("attempt")][-1:]
    assert sent == f"00-{APP_TRACE}-{answered.span_id}-01", "the provider sees the attempt"
    assert len([s for s in otlp.children(retried) if s.name.startswith("attempt")]) == 2


async def test_message_content_is_recorded_only_when_enabled(
    start_sidecar: StartSidecar, otlp: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    sidecar = await start_sidecar({"traffic": {"realWeight": 0}})
    await _chat(sidecar)
    await exported(sidecar)
    (span,) = otlp.requests()
    assert PROMPT in span.attributes["gen_ai.input.messages"]
    assert "gen_ai.output.messages" in span.attributes


async def test_no_endpoint_no_tracing(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar({"traffic": {"realWeight": 0}})
    assert sidecar.runtime.tracing is None, "off: the data path pays one check"
    assert (await _chat(sidecar)).choices[0].message.content


Seen = tuple[str, list[str]]  # the answering model and finish reasons, as the app read them


async def _chat_stream(sidecar: Sidecar) -> Seen:
    stream = await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
        extra_headers={"traceparent": TRACEPARENT},
    )  # fmt: skip
    model, reasons = "", []
    async for chunk in stream:
        model = chunk.model or model
        reasons += [c.finish_reason for c in chunk.choices if c.finish_reason]
    return model, reasons


async def _responses_stream(sidecar: Sidecar) -> Seen:
    stream = await openai_client(sidecar).responses.create(
        model="gpt-4o-mini", input=PROMPT, stream=True, extra_headers={"traceparent": TRACEPARENT}
    )
    seen: Seen = ("", [])
    async for event in stream:
        if event.type == "response.completed":
            seen = (event.response.model, [str(event.response.status)])
    return seen


async def _anthropic_stream(sidecar: Sidecar) -> Seen:
    async with anthropic_client(sidecar).messages.stream(
        model="claude-sonnet-5", max_tokens=64, messages=ASK,  # type: ignore[arg-type]
        extra_headers={"traceparent": TRACEPARENT},
    ) as stream:  # fmt: skip
        final = await stream.get_final_message()
    return final.model, [str(final.stop_reason)]


async def _gemini_stream(sidecar: Sidecar) -> Seen:
    client = _gemini_client(sidecar)
    model, reasons = "", []
    async with client.aio as aio:
        async for chunk in await aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=PROMPT
        ):
            model = chunk.model_version or model
            reasons += [c.finish_reason.value for c in chunk.candidates or () if c.finish_reason]
    return model, reasons


#: streamed call, and the model it asks for
STREAMS = [
    (_chat_stream, "gpt-4o-mini"),
    (_responses_stream, "gpt-4o-mini"),
    (_anthropic_stream, "claude-sonnet-5"),
    (_gemini_stream, "gemini-2.5-flash"),
]


async def test_streamed_answers_carry_model_finish_reasons_and_usage_in_every_dialect(
    on_arm: tuple[Sidecar, str], otlp: OTLPReceiver
) -> None:
    sidecar, arm = on_arm
    seen = [await call(sidecar) for call, _ in STREAMS]
    await exported(sidecar)
    spans = otlp.requests()
    assert len(spans) == len(STREAMS), [s.name for s in otlp.spans]
    for span, (_, model), (answered_by, reasons) in zip(spans, STREAMS, seen, strict=True):
        attributes = span.attributes
        assert attributes["llm_rollout.stream"] is True
        assert attributes["llm_rollout.arm"] == arm
        assert attributes["gen_ai.request.model"] == model
        # What the app read from the stream, in the span: the answering model and why it ended.
        assert answered_by.startswith(model), (model, answered_by)
        assert reasons, (model, "the app read no finish reason")
        assert attributes["gen_ai.response.model"] == answered_by, attributes
        assert attributes["gen_ai.response.finish_reasons"] == reasons, (model, attributes)
        assert attributes["gen_ai.usage.input_tokens"] > 0, (model, attributes)
        assert attributes["gen_ai.usage.output_tokens"] > 0, (model, attributes)
        assert span.trace_id == APP_TRACE


async def test_an_unsampled_request_exports_nothing_and_the_provider_still_gets_its_trace(
    start_sidecar: StartSidecar, otlp: OTLPReceiver, fake_openai: FakeOpenAI
) -> None:
    """The app decided not to sample (flags 00): the default parent-based sampler
    follows it; the provider still sees the app's trace, not sampled."""
    sidecar = await start_sidecar(real_spec(fake_openai))
    await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini", messages=ASK,  # type: ignore[arg-type]
        extra_headers={"traceparent": f"00-{APP_TRACE}-b7ad6b7169203331-00"},
    )  # fmt: skip
    await _chat(sidecar)  # sampled: exported
    await exported(sidecar)
    (span,) = otlp.requests()
    unsampled, sampled = (r.headers["traceparent"] for r in fake_openai.requests[-2:])
    assert unsampled.startswith(f"00-{APP_TRACE}-"), unsampled
    assert unsampled.endswith("-00"), "the provider is told the trace is not sampled"
    assert "b7ad6b7169203331" not in unsampled, "its parent is the sidecar's span, not the app's"
    assert sampled == f"00-{APP_TRACE}-{otlp.children(span)[0].span_id}-01"


def test_a_failed_request_records_the_exception_as_the_sdk_would() -> None:
    """A request span ending in an exception carries the SDK's own ``exception`` event
    (`RequestTrace.end` builds it without the SDK's Span)."""
    kept: list[Any] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            kept.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    processor = BatchSpanProcessor(Keep())
    provider.add_span_processor(processor)
    tracing = Tracing(provider, processor, "t")
    request = make_mocked_request("POST", "/v1/chat/completions")
    with pytest.raises(TimeoutError) as raised, tracing.request_span(request, OpenAIChat()):
        raise TimeoutError("upstream took too long")
    sdk_span = provider.get_tracer("t").start_span("chat")
    sdk_span.record_exception(raised.value)  # the same exception, its traceback as ours saw
    sdk_span.end()
    provider.force_flush()
    record, stock = kept
    ours = record.as_readable()
    assert [(e.name, dict(e.attributes or {})) for e in ours.events] == [
        (e.name, dict(e.attributes or {})) for e in stock.events
    ]
    assert ours.status.status_code is StatusCode.ERROR
    assert ours.status.description == "TimeoutError"


@pytest.mark.parametrize(
    ("sampler", "kept"),
    [
        (ParentBased(TraceIdRatioBased(0.5)), {True, False}),
        (TraceIdRatioBased(0.5), {True, False}),
        (ParentBased(ALWAYS_OFF), {False}),
        (ParentBased(ALWAYS_ON), {True}),
        (ALWAYS_ON, {True}),
        (ALWAYS_OFF, {False}),
    ],
    ids=[
        "parentbased_traceidratio", "traceidratio", "parentbased_always_off",
        "parentbased_always_on", "always_on", "always_off",
    ],
)  # fmt: skip
def test_a_request_without_a_parent_is_sampled_as_the_configured_sampler_decides(
    sampler: Sampler, kept: set[bool]
) -> None:
    """`request_span` asks a parent-based sampler's root directly when the app sent no
    ``traceparent`` (a static root, always on or off, once for all requests): every
    decision is the one the configured sampler takes."""
    provider = TracerProvider(sampler=sampler)
    tracing = Tracing(provider, BatchSpanProcessor(SpanExporter()), "t")
    request = make_mocked_request("POST", "/v1/chat/completions")
    decisions = []
    for _ in range(200):
        traced = tracing.request_span(request, OpenAIChat())
        expected = sampler.should_sample(None, traced.trace_id, "chat", SpanKind.SERVER)
        assert traced.recording is expected.decision.is_sampled()
        decisions.append(traced.recording)
    assert set(decisions) == kept
    provider.shutdown()


@pytest.mark.parametrize("tracestate", [None, "vendor=value,other=2"])
def test_the_provider_gets_the_w3c_headers_the_sdk_would_write(tracestate: str | None) -> None:
    """`propagate` writes ``traceparent``/``tracestate`` itself: the same text as the SDK's
    propagator, for a sampled attempt continuing an app's trace with or without state."""
    provider = TracerProvider()
    processor = BatchSpanProcessor(SpanExporter())
    tracing = Tracing(provider, processor, "t")
    headers = {"traceparent": f"00-{APP_TRACE}-b7ad6b7169203331-01"}
    if tracestate is not None:
        headers["tracestate"] = tracestate
    request = make_mocked_request("POST", "/v1/chat/completions", headers=headers)
    with tracing.request_span(request, OpenAIChat()) as traced:
        traced.attempt = (tracing.ids.generate_span_id(), {})
        ours: dict[str, str] = {}
        propagate(request, ours)
        attempt = SpanContext(
            traced.trace_id, traced.attempt[0], is_remote=False, trace_flags=TraceFlags(1),
            trace_state=traced.trace_state,
        )  # fmt: skip
        sdk: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(sdk, set_span_in_context(NonRecordingSpan(attempt)))
    assert ours == sdk
    assert ours["traceparent"].startswith(f"00-{APP_TRACE}-")
    assert ours.get("tracestate") == tracestate


@pytest.mark.parametrize(
    ("payload", "facts"),
    [
        ({"model": "m", "choices": [{"finish_reason": "stop"}, {"finish_reason": None}]},
         ("m", ["stop"])),
        ({"modelVersion": "g", "candidates": [{"finishReason": "STOP"}]}, ("g", ["STOP"])),
        ({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, (None, ["end_turn"])),
        ({"response": {"object": "response", "model": "r", "status": "completed"}},
         ("r", ["completed"])),
        # A provider's JSON of another shape: what it has, never an error.
        ({"choices": 5, "model": "m"}, ("m", [])),
        ({"choices": [7, "x", {"finish_reason": ["odd"]}]}, (None, ["['odd']"])),
        ({"candidates": {"finishReason": "STOP"}}, (None, [])),
        ({"object": "response", "status": ["completed"]}, (None, [])),
        ({"object": "response", "status": {"a": 1}}, (None, [])),
        ({"message": "text", "delta": "x", "response": 3}, (None, [])),
    ],
)  # fmt: skip
def test_answer_facts_read_every_dialect_and_survive_any_shape(
    payload: dict[str, Any], facts: tuple[str | None, list[str]]
) -> None:
    assert answer_facts(payload) == facts


async def test_a_stream_from_a_provider_of_another_dialect_carries_what_the_app_read(
    start_sidecar: StartSidecar, otlp: OTLPReceiver, fake_openai: FakeOpenAI
) -> None:
    """An Anthropic or Gemini SDK answered by an OpenAI provider (translated): the span has
    the answering model and the finish reasons as the app's own SDK read them."""
    sidecar = await start_sidecar(real_spec(fake_openai))
    seen = [await _anthropic_stream(sidecar), await _gemini_stream(sidecar)]
    await exported(sidecar)
    spans = otlp.requests()
    assert len(spans) == 2, [s.name for s in otlp.spans]
    for span, (answered_by, reasons) in zip(spans, seen, strict=True):
        assert reasons, "the app read a finish reason"
        assert span.attributes["llm_rollout.backend"] == "openai-primary"
        assert span.attributes["gen_ai.response.model"] == answered_by, span.attributes
        assert span.attributes["gen_ai.response.finish_reasons"] == reasons, span.attributes
