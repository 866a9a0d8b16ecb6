"""OpenTelemetry GenAI spans for each request: off unless an OTLP endpoint is set.

One SERVER span per request, named ``{operation} {model}`` with the GenAI semantic
conventions' attributes and this project's own (``llm_rollout.*``); children for the
budget hold, each upstream attempt (so retries and fallbacks show) and the mock
(`child_span`). A scored answer's span ends with its score, a loop turn after the
answer went out. The app's W3C ``traceparent`` is continued, and each attempt sends
its own to the provider.

Cost when off: `Runtime.tracing` is None and `Handler.handle` checks it once; the
`note_*` helpers and `child_span` then read one context variable. Cost when on
(measured by `make bench`): a span is recorded as plain ids and a dict, and becomes
one tuple (`SpanRecord`) when it ends, queued on the SDK's batch processor; the
exporter thread encodes it. The SDK's `Span` (attribute validation, locks, per-span
processor calls) cost ~25 us per request more, and building its `ReadableSpan` and
`SpanContext`s on the loop about 7 % of a request's CPU more (paired rounds). Sampling
is the SDK sampler's decision, taken once per request (its children share it, as
every standard sampler would decide; a static sampler's, always on or off, once for
all); a request not sampled records nothing and only propagates its context. The
exporter (`proxy.config.otlp_export`) and sampler read the standard ``OTEL_*``
variables. Prompt and completion text are recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

import functools
import re
import time
import traceback
from collections.abc import Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_ESCAPED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.config.otlp_export import SpanRecord, new_record
from proxy.config.telemetry import env_flag, provider_from_env
from proxy.dialects import Dialect, ParsedRequest, Usage
from proxy.dialects.base import loads_or_none
from proxy.sse import Event, SSEParser

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_PROPAGATOR = TraceContextTextMapPropagator()
#: The parent context of a request without a ``traceparent``: empty, as the sidecar's
#: current context always is (None would make the sampler look the current one up).
_NO_PARENT = Context()


class Tracing:
    """Spans exported over OTLP/HTTP; `from_env` is None when tracing is off."""

    def __init__(
        self, provider: TracerProvider, processor: BatchSpanProcessor, service: str
    ) -> None:
        """`processor`: the provider's (batching, exporting) one, which ended spans go to.

        Its queue takes `SpanRecord`s straight from `emit`: `BatchSpanProcessor.on_end`
        only checks that an SDK span is sampled (a record always is) before calling it."""
        self.provider = provider
        self.emit = cast("Callable[[SpanRecord], None]", processor._batch_processor.emit)
        self.sampler, self.ids, self.resource = (
            provider.sampler,
            provider.id_generator,
            provider.resource,
        )
        #: The sampler a request without a ``traceparent`` gets its decision from: a
        #: `ParentBased` sampler (the default) asks its root sampler then, asked here
        #: directly (the wrapper's own look for a parent costs a third of the decision).
        sampler = self.sampler
        self.root_sampler: Sampler = sampler._root if isinstance(sampler, ParentBased) else sampler
        #: A `StaticSampler`'s decision (always on, always off: the root of the default
        #: ``parentbased_always_on``) is documented to be the same whatever it is asked:
        #: taken once, not per request.
        self.root_decision: SamplingResult | None = None
        if isinstance(self.root_sampler, StaticSampler):
            self.root_decision = self.root_sampler.should_sample(_NO_PARENT, 0, "")
        self.scope = InstrumentationScope(service)  # what `provider.get_tracer(service)` names
        self.capture_content = env_flag(CAPTURE_ENV)

    @classmethod
    def from_env(cls, service: str) -> Tracing | None:
        """On when an OTLP endpoint is set (see `proxy.config.telemetry`)."""
        exporting = provider_from_env(service)
        return None if exporting is None else cls(*exporting, service)

    def flush(self) -> None:
        """Export what is buffered. Blocking: call it off the event loop (`to_thread`)."""
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()

    def request_span(self, request: web.Request, dialect: Dialect) -> RequestTrace:
        """The request's span (enter it for the request's time), continuing the app's
        ``traceparent`` when it sent one.

        The same steps as the SDK's `Tracer.start_span`: the parent's trace or a new one,
        the sampler's decision, a new span id."""
        parent_context = None
        parent: SpanContext | None = None
        if "traceparent" in request.headers:  # most apps send none: nothing to parse
            parent_context = _PROPAGATOR.extract(request.headers)
            parent = trace.get_current_span(parent_context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
        else:
            parent, trace_id = None, self.ids.generate_trace_id()
        if parent_context is not None:
            sampling = self.sampler.should_sample(
                parent_context, trace_id, dialect.operation, SpanKind.SERVER
            )
        elif self.root_decision is not None:
            sampling = self.root_decision
        else:
            sampling = self.root_sampler.should_sample(
                _NO_PARENT, trace_id, dialect.operation, SpanKind.SERVER
            )
        sampled = sampling.decision is Decision.RECORD_AND_SAMPLE
        traced = RequestTrace(
            self, trace_id, self.ids.generate_span_id(), sampling.trace_state, parent,
            dialect, sampled,
        )  # fmt: skip
        if sampled and sampling.attributes:
            traced.attributes.update(sampling.attributes)
        return traced


def _exception_event(error: BaseException) -> SpanEvent:
    """What `opentelemetry.sdk.trace.Span.record_exception` records (SDK 1.45)."""
    kind = type(error)
    module = kind.__module__
    return SpanEvent("exception", {
        EXCEPTION_TYPE: f"{module}.{kind.__qualname__}" if module and module != "builtins"
                        else kind.__qualname__,
        EXCEPTION_MESSAGE: str(error),
        EXCEPTION_STACKTRACE: "".join(traceback.format_exception(error)),
        EXCEPTION_ESCAPED: "False",
    })  # fmt: skip


_UNSET = Status(StatusCode.UNSET)


class RequestTrace:
    """What a request's span learns on the way; it ends when the answer has ended.

    `recording`: the sampler kept this request; if not, nothing is noted (`_trace` is
    None for it) and only its context travels on to the provider."""

    __slots__ = (
        "_token", "answer_read", "attempt", "attempt_status", "attempts", "attributes",
        "dialect", "error", "model", "name", "parent_id", "parent_remote", "pending",
        "reasons", "recording", "span_id", "started", "status", "trace_id", "trace_state",
        "tracing",
    )  # fmt: skip

    def __init__(
        self, tracing: Tracing, trace_id: int, span_id: int, trace_state: TraceState | None,
        parent: SpanContext | None, dialect: Dialect, recording: bool,
    ) -> None:  # fmt: skip
        """`parent`: the app's span (from its ``traceparent``), or None."""
        self.tracing, self.trace_id, self.span_id = tracing, trace_id, span_id
        self.trace_state = trace_state
        self.parent_id = None if parent is None else parent.span_id
        self.parent_remote = parent is not None and parent.is_remote
        self.dialect, self.recording = dialect, recording
        self.name = dialect.operation
        self.started = time.time_ns()
        self.status = _UNSET
        self.error: BaseException | None = None
        self.attributes: dict[str, Any] = {
            "gen_ai.operation.name": dialect.operation,
            "gen_ai.provider.name": dialect.otel_provider,
        }
        self.attempts = 0
        #: The upstream attempt in progress (its span id and attributes): its
        #: traceparent goes to the provider, the provider's status to its span.
        self.attempt: tuple[int, dict[str, Any]] | None = None
        #: The attempt's status as the provider answered (an error status: refused).
        self.attempt_status = _UNSET
        #: What the answer said (`read`: a stream's events as they pass; a whole body
        #: where the relay parses it for usage, or else in `answered`).
        self.model: str | None = None
        self.reasons: list[str] = []
        self.answer_read = False
        #: What the span still waits for before it ends: the request, and its answer's
        #: quality score when one is coming (`score_pending`).
        self.pending = 1
        self._token: Token[RequestTrace | None] | None = None

    def __enter__(self) -> RequestTrace:
        """The request is served in this task from here: the `note_*` helpers find it."""
        self._token = _CURRENT.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        if error is not None:
            self.error = error
            self.status = Status(StatusCode.ERROR, type(error).__name__)
        assert self._token is not None  # entered
        _CURRENT.reset(self._token)
        self.done()

    def done(self) -> None:
        """One of the things the span waits for is over; the last one ends it."""
        self.pending -= 1
        if self.pending == 0 and self.recording:
            self.end(
                self.name, self.span_id, SpanKind.SERVER, self.attributes, self.started,
                self.status, self.error,
            )  # fmt: skip

    def end(
        self, name: str, span_id: int, kind: SpanKind, attributes: dict[str, Any],
        started: int, status: Status, error: BaseException | None = None,
    ) -> None:  # fmt: skip
        """A span of this request's trace is over (the request's own, or a child of it):
        to the batch processor, for export.

        An `error` becomes the ``exception`` event the SDK's `Span.record_exception`
        would add."""
        own = span_id == self.span_id  # the request's span: its parent is the app's
        tracing = self.tracing
        tracing.emit(new_record((
            name, self.trace_id, span_id, self.trace_state,
            self.parent_id if own else self.span_id, own and self.parent_remote, kind,
            attributes, started, time.time_ns(), status,
            () if error is None else (_exception_event(error),), tracing.resource,
            tracing.scope,
        )))  # fmt: skip

    def saw(self, event: Event) -> None:
        """One event of a streamed answer: its model and finish reasons, in any dialect.

        Parsed only until the model is known, then only when it may end the answer: a
        long stream's text deltas are not parsed for the span."""
        data = event.data
        if data[:1] == "{" and (self.model is None or _MAY_FINISH.search(data)):
            self.read(loads_or_none(data))

    def read(self, payload: Any) -> None:
        """A whole answer (a Gemini JSON stream: a list of chunks) or one stream event,
        parsed: its model and finish reasons."""
        for part in payload if isinstance(payload, list) else (payload,):
            if isinstance(part, dict):
                model, reasons = answer_facts(part)
                self.model = model or self.model
                self.reasons += reasons
        self.answer_read = True

    def parsed(self, parsed: ParsedRequest) -> None:
        self.name = f"{self.dialect.operation} {parsed.model}"
        self.attributes["gen_ai.request.model"] = parsed.model
        if parsed.stream:
            self.attributes["llm_rollout.stream"] = True
        if self.tracing.capture_content:
            self.attributes["gen_ai.input.messages"] = parsed.raw.decode(errors="replace")

    def answered(self, response: web.StreamResponse) -> None:
        """The answer is complete (a stream has ended): status, backend, body facts."""
        if not self.recording:
            return
        attributes, headers = self.attributes, response.headers
        attributes["http.response.status_code"] = response.status
        for header, attribute in _HEADER_ATTRIBUTES.items():
            if (value := headers.get(header)) is not None:
                attributes[attribute] = value
        if response.status >= 500:
            self.status = Status(StatusCode.ERROR)
            attributes["error.type"] = str(response.status)
        body = response.body if isinstance(response, web.Response) else None
        if isinstance(body, bytes) and body[:1] in (b"{", b"["):  # "[": a Gemini JSON stream
            if not self.answer_read:  # read already where it was parsed (`note_answer`)
                self.read(loads_or_none(body))
            if self.tracing.capture_content and response.status == 200:
                attributes["gen_ai.output.messages"] = body.decode(errors="replace")
        if self.model:
            attributes["gen_ai.response.model"] = self.model
        if self.reasons:
            attributes["gen_ai.response.finish_reasons"] = tuple(self.reasons)


#: Response headers the sidecar sets, and the span attribute each one becomes.
_HEADER_ATTRIBUTES = {
    "x-llm-backend": "llm_rollout.backend",
    "x-llm-route-reason": "llm_rollout.route_reason",
    "x-llm-request-id": "llm_rollout.request_id",
    "x-request-id": "gen_ai.response.id",
}

#: The request being traced, in the task serving it (aiohttp runs each request in its
#: own task). A context variable, not a request key: reading it when tracing is off
#: costs a lookup, where a missing request key costs a raised KeyError.
_CURRENT: ContextVar[RequestTrace | None] = ContextVar("llm_rollout_trace", default=None)


#: What a stream event that carries a finish reason or a final status has in its text.
_MAY_FINISH = re.compile(r'"(?:finish_reason|finishReason|stop_reason|status)"\s*:\s*"')

#: A Responses answer's statuses that end it (a stream's first events say "in_progress").
_FINAL_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})


def answer_facts(payload: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The answering model and finish reasons of a whole answer or of one stream event,
    in any dialect (a stream's chunks each carry some of them). A provider's JSON of
    an unexpected shape gives what it has, never an error."""
    choices = payload.get("choices")
    if isinstance(choices, list):  # OpenAI chat, the most common: nothing else to look for
        model = payload.get("model")
        reasons = [str(choice["finish_reason"]) for choice in choices
                   if isinstance(choice, dict) and choice.get("finish_reason")]  # fmt: skip
        return (str(model) if model else None), reasons
    for wrapper in ("response", "message"):  # a Responses event; Anthropic's message_start
        inner = payload.get(wrapper)
        if isinstance(inner, dict):
            payload = inner
    model = payload.get("model") or payload.get("modelVersion")
    reasons = []
    candidates = payload.get("candidates")  # Gemini
    for candidate in candidates if isinstance(candidates, list) else ():
        if isinstance(candidate, dict) and candidate.get("finishReason"):
            reasons.append(str(candidate["finishReason"]))
    delta = payload.get("delta")  # Anthropic's message_delta carries the stop reason
    stop = payload.get("stop_reason") or (delta.get("stop_reason") if isinstance(delta, dict)
                                          else None)  # fmt: skip
    if stop:  # Anthropic
        reasons.append(str(stop))
    status = payload.get("status")
    if (
        payload.get("object") == "response"
        and isinstance(status, str)
        and status in _FINAL_STATUSES
    ):
        reasons.append(status)  # OpenAI Responses
    return (str(model) if model else None), reasons


def _trace(request: web.Request) -> RequestTrace | None:
    """The trace of `request`: the one being served in this task, if tracing is on and
    the request sampled."""
    traced = _CURRENT.get()
    return traced if traced is not None and traced.recording else None


def note_parsed(request: web.Request, parsed: ParsedRequest) -> None:
    if (traced := _trace(request)) is not None:
        traced.parsed(parsed)


def note_routed(request: web.Request, arm: str, tenant: str) -> None:
    """`arm`: real or mock, as routed (a real request may still end at the mock)."""
    if (traced := _trace(request)) is not None:
        traced.attributes["llm_rollout.arm"] = arm
        traced.attributes["llm_rollout.tenant"] = tenant


def note_usage(request: web.Request, usage: Usage) -> None:
    if (traced := _trace(request)) is not None:
        traced.attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        traced.attributes["gen_ai.usage.output_tokens"] = usage.output_tokens


def stream_trace(request: web.Request) -> RequestTrace | None:
    """The trace a stream's events go to (`RequestTrace.saw`); None: tracing is off."""
    return _trace(request)


def note_events(request: web.Request, events: Iterable[bytes]) -> None:
    """A streamed answer the sidecar wrote itself (the mock's): parsed only when traced."""
    if (traced := _trace(request)) is not None:
        parser = SSEParser()
        for chunk in events:
            for event in parser.feed(chunk):
                traced.saw(event)


def note_answer(request: web.Request, payload: Any) -> None:
    """A whole answer the relay parsed for its usage (`loads_or_none`): read once."""
    if (traced := _trace(request)) is not None:
        traced.read(payload)


def note_cost(request: web.Request, cost: float | None) -> None:
    """What the answer cost in USD (None: not priced, or the mock's)."""
    if cost is not None and (traced := _trace(request)) is not None:
        traced.attributes["llm_rollout.cost_usd"] = cost


def score_pending() -> None:
    """The request's answer is scored on a later loop turn (no answer waits for its
    score): its span stays open until `note_quality` brings the score."""
    if (traced := _CURRENT.get()) is not None:
        traced.pending += 1


def note_quality(score: float | None) -> None:
    """The answer's score (None: scoring failed) on its request's span, which it ends.

    Called from the scorer's callback, which runs in a copy of the request's context.
    """
    if (traced := _CURRENT.get()) is not None:
        if score is not None:
            traced.attributes["llm_rollout.quality_score"] = score
        traced.done()


def note_attempt_status(request: web.Request, status: int) -> None:
    """The provider's status on the current attempt's span (it may be retried)."""
    if (traced := _trace(request)) is not None and (attempt := traced.attempt) is not None:
        attempt[1]["http.response.status_code"] = status
        if status >= 400:
            traced.attempt_status = Status(StatusCode.ERROR)
            attempt[1]["error.type"] = str(status)


def propagate(request: web.Request, headers: MutableMapping[str, str]) -> None:
    """Send the current span (the attempt's; unsampled: the request's) to the provider
    as ``traceparent`` (and ``tracestate``), in the W3C form the SDK's
    `TraceContextTextMapPropagator.inject` writes (tests/test_tracing.py compares them);
    written here without the SDK's `Context` and span wrapper it would need first."""
    if (traced := _CURRENT.get()) is not None:
        span_id = traced.span_id if traced.attempt is None else traced.attempt[0]
        headers["traceparent"] = (
            f"00-{traced.trace_id:032x}-{span_id:016x}-{'01' if traced.recording else '00'}"
        )
        if traced.trace_state:
            headers["tracestate"] = traced.trace_state.to_header()


@functools.lru_cache(maxsize=64)
def _hostname(base_url: str) -> str | None:
    """A provider's host (``server.address``), from its configured base URL."""
    return urlsplit(base_url).hostname


class ChildSpan:
    """A child span of the request's, for the time of its ``with`` block.

    A context manager, not a coroutine wrapping the work: a wrapper is one more frame
    every suspension and resumption of the awaited work passes through (an upstream
    call suspends a dozen times), where this costs its entry and its exit."""

    __slots__ = ("attributes", "kind", "name", "span_id", "started", "traced")

    def __init__(
        self, traced: RequestTrace, name: str, attempt_of: str | None, base_url: str | None
    ) -> None:
        self.traced, self.name = traced, name
        self.span_id = traced.tracing.ids.generate_span_id()
        self.attributes: dict[str, Any] = {}
        self.kind = SpanKind.INTERNAL
        if attempt_of is not None:
            traced.attempts += 1
            self.kind = SpanKind.CLIENT
            self.attributes["llm_rollout.attempt"] = traced.attempts
            self.attributes["llm_rollout.backend"] = attempt_of
            if base_url and (host := _hostname(base_url)):
                self.attributes["server.address"] = traced.attributes["server.address"] = host
            traced.attempt, traced.attempt_status = (self.span_id, self.attributes), _UNSET
        self.started = 0

    def __enter__(self) -> None:
        self.started = time.time_ns()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        """A child's error is its status (the request's span records the exception)."""
        traced = self.traced
        if error is not None:
            status = Status(StatusCode.ERROR, type(error).__name__)
        elif self.kind is SpanKind.CLIENT:
            status = traced.attempt_status
        else:
            status = _UNSET
        traced.end(self.name, self.span_id, self.kind, self.attributes, self.started, status)


#: What `child_span` gives when there is no span to record: enters and exits, nothing else.
NO_SPAN: AbstractContextManager[None] = nullcontext()


def child_span(
    request: web.Request, name: str, *, attempt_of: str | None = None,
    base_url: str | None = None,
) -> AbstractContextManager[None]:  # fmt: skip
    """A child span of the request's for a ``with`` block (`NO_SPAN`: tracing is off,
    or the request not sampled).

    `attempt_of`: the provider an upstream attempt calls; the span is then a CLIENT
    span numbered in the request (``llm_rollout.attempt``), with ``server.address``.
    """
    traced = _trace(request)
    return NO_SPAN if traced is None else ChildSpan(traced, name, attempt_of, base_url)
