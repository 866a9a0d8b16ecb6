"""The data port: one route per provider path, all served by one thin handler.

The handler reads the body, asks the pure core what to do (dialect parse, routing
decision, mock answer) and does the I/O: relay to the provider or write the mock's
answer. Every exit, error or not, answers in the client's dialect and says which
backend answered (`x-llm-backend`) and why (`x-llm-route-reason`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from proxy import mock
from proxy.budget import NO_TENANT, Refusal
from proxy.config import Arm
from proxy.config.model import MockSpec
from proxy.dialects import (
    ROUTES,
    BadRequest,
    Dialect,
    ErrorKind,
    ParsedRequest,
    guess_dialect,
)
from proxy.quality import extractable
from proxy.resilience.chain import fallback_chain
from proxy.routing import Decision, decide
from proxy.server import tracing
from proxy.server.attempts import error_response, serve_real, settle
from proxy.server.budget import Ticket, cost_header
from proxy.server.judge import Judge
from proxy.server.mock_cost import record_shadow_cost
from proxy.server.quality import ANSWER, Seen, schedule
from proxy.server.relay import REQUEST_ID
from proxy.server.replay import (
    CASSETTES,
    CassetteStore,
    finish_recording,
    replayed,
    start_recording,
)
from proxy.server.runtime import Runtime, Snapshot
from proxy.server.shadow_traffic import ShadowTraffic
from proxy.server.translated import gemini_json_stream
from proxy.translate import TRANSLATABLE

log = logging.getLogger("llm_rollout.request")

RUNTIME = web.AppKey("runtime", Runtime)
SESSION = web.AppKey("session", aiohttp.ClientSession)
SHADOW = web.AppKey("shadow", ShadowTraffic)
#: The LLM judge (`quality.judge`): the scoring hook hands it finished answers.
JUDGE = web.AppKey("judge", Judge)
#: Per-request note of when the first byte of a streamed answer went out.
FIRST_BYTE_AT = web.RequestKey("first_byte_at", float)


class Handler:
    """Serves one dialect's path."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.mock_seen = mock.Occurrences()  # a retried request draws a fresh mock fault

    async def handle(self, request: web.Request) -> web.StreamResponse:
        spans = request.app[RUNTIME].tracing
        if spans is None:  # the one check tracing costs when it is off
            return await self._serve(request)
        with spans.request_span(request, self.dialect) as traced:
            response = await self._serve(request)
            traced.answered(response)  # a stream has ended by now: the span ends with it
            return response

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        snapshot = runtime.snapshot
        loop = asyncio.get_running_loop()
        started = loop.time()
        chain_started = runtime.clock()  # the retry deadline counts from here
        request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
        headers = {REQUEST_ID: request_id, "x-llm-backend": "mock"}
        dialect = self.dialect
        try:
            body = await _read_body(request, runtime.max_body_bytes, runtime.limits.body_timeout)
            parsed = dialect.parse(
                body,
                path_model=request.match_info.get("model"),
                query_stream=request.match_info.get("method") == "streamGenerateContent",
            )
            mock.check_answerable(dialect.name, parsed)  # either arm: refused before routing
            dialect.upstream_target(request.rel_url.raw_path, request.rel_url.raw_query_string)
        except BadRequest as error:
            self._count(runtime, "none", "none", error.kind.status)
            refused = error_response(dialect, error.kind, str(error), headers)
            if error.kind is ErrorKind.REQUEST_TIMEOUT:
                refused.force_close()  # the rest of that body is not waited for
            return refused
        tracing.note_parsed(request, parsed)

        refusal = self._over_quota(request, runtime, snapshot, headers)
        if refusal is not None:
            return refusal
        cross = dialect.name in TRANSLATABLE  # a provider of another dialect may answer
        decision = self._route(request, snapshot, runtime.force_mock_env, cross)
        cached = None
        if snapshot.spec.cache.enabled and decision.provider is not None:  # in front of the budget
            cached = await runtime.cache.lookup(
                snapshot.spec.cache, request, tenant=self._tenant(request, snapshot),
                dialect=dialect.name, streamed=parsed.stream, provider=decision.provider, body=body,
            )  # fmt: skip
            headers["x-llm-cache"] = cached.result
            if cached.entry is not None:  # a hit answers as its arm, costs and reserves nothing
                self._count(runtime, cached.entry.provider, "real", cached.entry.status)
                runtime.stats.record("real", cached.entry.status, loop.time() - started)
                return runtime.cache.answer(cached.entry, headers)
        ticket: Ticket | None = None
        if decision.provider is not None:  # budget gate: hold the worst case before the call
            tenant = self._tenant(request, snapshot)
            reachable = fallback_chain(snapshot.spec, decision.provider, cross=cross)
            admit = runtime.budget.admit(
                dialect, [p for p in reachable if p is not None], parsed, tenant
            )
            with (  # a span only when a cap makes it hold something
                tracing.child_span(request, "budget hold")
                if runtime.budget.ledger.enabled else tracing.NO_SPAN
            ):  # fmt: skip
                admitted = await admit
            if isinstance(admitted, Refusal):
                if snapshot.spec.budget.on_exhausted == "reject":
                    return self._refuse(runtime, admitted, headers)
                decision = Decision(None, "budget")
            else:
                ticket = admitted
        headers["x-llm-backend"] = decision.backend
        headers["x-llm-route-reason"] = decision.reason
        arm: Arm = "mock" if decision.provider is None else "real"
        tracing.note_routed(request, arm, self._tenant(request, snapshot))
        response: web.StreamResponse
        if decision.provider is None:
            with tracing.child_span(request, "mock"):
                response = await self._serve_mock(request, snapshot, parsed, headers)
            if snapshot.spec.traffic.shadow is not None:  # after the answer: never delays it
                tenant = self._tenant(request, snapshot)
                request.app[SHADOW].maybe_copy(request, snapshot, dialect, parsed, decision, tenant)
        else:
            assert ticket is not None
            start_recording(request, snapshot.spec.mock.replay)
            try:
                response = await self._serve_real(
                    request,
                    runtime,
                    snapshot,
                    decision,
                    parsed,
                    headers,
                    chain_started,
                    ticket,
                    cross,
                )
            finally:
                if not ticket.settled:  # an unexpected exit: charge the whole hold
                    runtime.budget.settle(ticket, None)
            await finish_recording(request, snapshot.spec.mock.replay, parsed)
            if cached is not None:
                await runtime.cache.store(
                    request, cached, response, headers["x-llm-backend"], ticket.cost
                )
        backend = headers["x-llm-backend"]
        runtime.metrics.duration.labels(
            dialect.operation, dialect.otel_provider, parsed.model, backend
        ).observe(elapsed := loop.time() - started)
        arm, status = _analysis_view(decision, backend, response.status)
        routed = decision.provider.name if decision.provider is not None else None
        cost = float(ticket.cost) if ticket is not None and ticket.cost is not None else None
        runtime.stats.record(
            arm, status, elapsed, cost or 0.0, provider=routed, fell_back=backend != routed
        )
        seen = request.get(ANSWER)
        if seen is not None and status < 400:  # a fallback's mock answer is a real-arm failure
            schedule(runtime, dialect.name, parsed, request.headers, seen, arm, backend,
                     request.app[JUDGE])  # fmt: skip
        tracing.note_cost(request, cost)
        first_byte_at = request.get(FIRST_BYTE_AT)
        if parsed.stream and first_byte_at is not None:
            runtime.metrics.first_chunk.labels(dialect.name, backend).observe(
                first_byte_at - started
            )
        return response

    def _tenant(self, request: web.Request, snapshot: Snapshot) -> str:
        tenants = snapshot.spec.tenants
        return (request.headers.get(tenants.header) if tenants else None) or NO_TENANT

    def _refuse(self, runtime: Runtime, refusal: Refusal, headers: dict[str, str]) -> web.Response:
        """`onExhausted: reject`: a 429 in the client's dialect that says which budget."""
        headers |= {"x-llm-backend": "none", "x-llm-route-reason": "budget",
                    "x-should-retry": "false"}  # fmt: skip
        if refusal.resets_at is not None:
            wait = refusal.resets_at - runtime.budget.clock()
            headers["retry-after"] = str(max(int(wait.total_seconds()) + 1, 1))
        self._count(runtime, "none", "real", ErrorKind.RATE_LIMITED.status)
        return error_response(
            self.dialect, ErrorKind.RATE_LIMITED, f"llm-rollout: {refusal.message}", headers
        )

    def _route(
        self, request: web.Request, snapshot: Snapshot, force_mock: bool, cross: bool
    ) -> Decision:
        sticky = snapshot.spec.traffic.sticky_key
        return decide(
            snapshot.spec,
            self.dialect.provider_type,
            sticky_value=request.headers.get(sticky.header) if sticky else None,
            draw=random.random(),
            force_mock=force_mock,
            cross=cross,
        )

    async def _serve_mock(
        self,
        request: web.Request,
        snapshot: Snapshot,
        parsed: ParsedRequest,
        headers: dict[str, str],
        arm: str = "mock",
    ) -> web.StreamResponse:
        """The mock's answer; `arm` is "real" when a real request fell back to the mock."""
        runtime = request.app[RUNTIME]
        seen = self.mock_seen.next(parsed.raw)
        request_id = headers["x-request-id"] = headers[REQUEST_ID]  # the mock is the provider
        context = mock.MockContext.from_headers(
            request.headers, request_id, seen, fallback=arm != "mock"
        )
        answer = replayed(
            request, snapshot.spec.mock.replay, self.dialect, parsed, seen
        ) or await _generate(self.dialect, parsed, snapshot.spec.mock, context)
        if parsed.stream and gemini_json_stream(request):
            answer = mock.as_json_array(answer)
        headers.update(answer.headers)
        if answer.wait:
            await asyncio.sleep(answer.wait)
        if answer.fault == "stream_cut":
            runtime.metrics.stream_errors.labels(self.dialect.name, "mock", "mock_fault").inc()
        runtime.metrics.record_usage(
            self.dialect.operation, self.dialect.otel_provider, parsed.model, "mock", answer.usage
        )
        record_shadow_cost(runtime, self.dialect, parsed.model, answer.usage)
        tracing.note_usage(request, answer.usage)
        self._count(runtime, "mock", arm, answer.status)
        if answer.status == 200 and answer.fault is None and extractable(self.dialect.name):
            request[ANSWER] = Seen(body=answer.body, events=answer.events)
        if not answer.events:  # a JSON body: an answer, or a simulated error even to a stream
            return web.Response(
                status=answer.status, body=answer.body, content_type=answer.content_type,
                headers=headers,
            )  # fmt: skip
        tracing.note_events(request, answer.events)
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_type = answer.content_type
        await response.prepare(request)
        try:
            for delay, event in zip(answer.delays, answer.events, strict=True):
                if delay:
                    await asyncio.sleep(delay)
                await response.write(event)
                request.setdefault(FIRST_BYTE_AT, asyncio.get_running_loop().time())
            await response.write_eof()
        except ConnectionResetError:
            pass  # the app hung up mid-stream: nobody is left to answer
        return response

    async def _serve_real(
        self,
        request: web.Request,
        runtime: Runtime,
        snapshot: Snapshot,
        decision: Decision,
        parsed: ParsedRequest,
        headers: dict[str, str],
        started: float,
        ticket: Ticket,
        cross: bool,
    ) -> web.StreamResponse:
        """The attempt chain (retries, fallback, breakers: `attempts.serve_real`), then mock.

        A real request answered by the mock at the end of the chain still counts in
        the real arm (backend "mock"), so a step's analysis sees the fallbacks.
        """
        dialect = self.dialect
        served = await serve_real(
            request, request.app[SESSION], runtime, snapshot.spec, dialect, decision, parsed,
            headers, started, cross=cross,
        )  # fmt: skip
        # The budget hold covers the whole chain; it is settled once, with what was billed.
        cost = settle(runtime.budget, ticket, snapshot.spec, served)
        if served.response is None:  # the chain ended at the mock
            with tracing.child_span(request, "mock"):
                return await self._serve_mock(request, snapshot, parsed, headers, arm="real")
        if cost is not None and not served.response.prepared:  # a stream's headers are sent
            served.response.headers["x-llm-cost-usd"] = cost_header(cost)
        if served.first_byte_at is not None:
            request[FIRST_BYTE_AT] = served.first_byte_at
        if served.stream_error:
            runtime.metrics.stream_errors.labels(
                dialect.name, served.backend, served.stream_error
            ).inc()
        runtime.metrics.record_usage(
            dialect.operation, dialect.otel_provider, parsed.model, served.backend, served.usage
        )
        self._count(runtime, served.backend, "real", served.status)
        tracing.note_usage(request, served.usage)
        return served.response

    def _over_quota(
        self, request: web.Request, runtime: Runtime, snapshot: Snapshot, headers: dict[str, str]
    ) -> web.Response | None:
        """A 429 in the client's dialect when its tenant is over quota (refused, not queued)."""
        tenants = snapshot.spec.tenants
        if tenants is None:
            return None
        tenant = self._tenant(request, snapshot)
        wait = runtime.resilience.tenants.admit(tenants, tenant, runtime.clock())
        if wait is None:
            return None
        runtime.metrics.refused.labels(self.dialect.name, "tenant-quota").inc()
        self._count(runtime, "none", "none", ErrorKind.RATE_LIMITED.status)
        headers |= {"x-llm-backend": "none", "x-llm-route-reason": "tenant-quota",
                    "retry-after": str(wait)}  # fmt: skip
        rpm = tenants.quota(tenant).requests_per_minute
        message = (
            f"llm-rollout: tenant '{tenant}' ({tenants.header}) is over its quota of {rpm} "
            f"requests per minute; retry after {wait} s"
        )
        return error_response(self.dialect, ErrorKind.RATE_LIMITED, message, headers)

    def _count(self, runtime: Runtime, backend: str, arm: str, status: int) -> None:
        runtime.metrics.requests.labels(self.dialect.name, backend, arm, str(status)).inc()


def _analysis_view(decision: Decision, backend: str, status: int) -> tuple[Arm, int]:
    """The arm and status a rollout's analysis should judge a request by.

    A request routed real but answered by the mock after the chain gave up on every
    provider (fallback or open breakers) looks fine to the client, but it is a
    real-arm failure: counted as a 502 so a failing provider fails its step.
    """
    if decision.provider is None:
        return "mock", status
    if backend == "mock":
        return "real", ErrorKind.UPSTREAM.status
    return "real", status


#: A request body this large, an embedding, or a JSON schema to fill makes a mock answer
#: that can take tens of milliseconds to build: built off the event loop.
_HEAVY_BODY = 32 * 1024
_SCHEMA_MARKERS = (b'"json_schema"', b'"responseSchema"', b'"responseJsonSchema"',
                   b'"output_config"', b'"tools"')  # fmt: skip


async def _generate(
    dialect: Dialect, parsed: ParsedRequest, spec: MockSpec, context: mock.MockContext
) -> mock.Answer:
    """The mock's answer; heavy ones in a worker thread, so that `/healthz` and every other
    request keep being served while, say, 2,048 embeddings of 3,072 dimensions are built."""
    raw = parsed.raw
    heavy = (
        len(raw) > _HEAVY_BODY
        or dialect.operation == "embeddings"
        or any(marker in raw for marker in _SCHEMA_MARKERS)
    )
    if not heavy:
        return mock.answer(dialect.name, parsed, spec, context)
    return await asyncio.to_thread(mock.answer, dialect.name, parsed, spec, context)


async def _read_body(request: web.Request, limit: int, within: float) -> bytes:
    try:
        async with asyncio.timeout(within):
            return await request.read()  # the app's client_max_size is `limit`
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(
            f"request body exceeds the sidecar's limit of {limit} bytes (--max-body-bytes)",
            ErrorKind.TOO_LARGE,
        ) from None
    except TimeoutError:
        raise BadRequest(
            f"the request body did not arrive within {within:g} s (--body-timeout)",
            ErrorKind.REQUEST_TIMEOUT,
        ) from None


#: A route variable with its regex, ``{model:[^/:]+}``, shown to people as ``{model}``.
_PATTERN_VARIABLE = re.compile(r"\{(\w+):[^}]*\}")


async def not_found(request: web.Request) -> web.Response:
    dialect = guess_dialect(request.path, dict(request.headers))
    headers = {"x-llm-backend": "none"}
    served = ", ".join(_PATTERN_VARIABLE.sub(r"{\1}", path) for path, _ in ROUTES)
    return error_response(
        dialect,
        ErrorKind.NOT_FOUND,
        f"llm-rollout serves no {request.method} {request.path}; it serves POST {served}",
        headers,
    )


@web.middleware
async def dialect_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Any failure on the data path is an answer in the client's dialect, never aiohttp's
    plain-text 500: a bug is logged once with its stack and the request id, and the
    client gets the dialect's error object (status 500) carrying that id. Once bytes
    of an answer have gone out nothing can be sent in its place: the connection closes."""
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        log.exception("request %s: unexpected failure serving %s %s", request_id,
                      request.method, request.rel_url.raw_path)  # fmt: skip
        writer: Any = getattr(request, "_payload_writer", None)
        if writer is not None and writer.output_size:  # the answer has begun
            raise
        dialect = guess_dialect(request.path, dict(request.headers))
        headers = {"x-request-id": request_id, "x-llm-backend": "none"}
        message = (f"llm-rollout could not serve this request (request id {request_id}); "
                   "this is a bug in the sidecar, the request was not sent to a provider "
                   "twice: retrying is safe")  # fmt: skip
        return error_response(dialect, ErrorKind.INTERNAL, message, headers)


def build_data_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=runtime.max_body_bytes, middlewares=[dialect_errors])
    app[RUNTIME] = runtime
    app[CASSETTES] = CassetteStore()
    for path, dialect in ROUTES:
        app.router.add_post(path, Handler(dialect).handle)
    app.router.add_route("*", r"/{tail:[\s\S]*}", not_found)  # any path, newlines too

    async def session_context(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        app[SESSION] = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        app[SHADOW] = ShadowTraffic(runtime, app[SESSION])
        app[JUDGE] = Judge(runtime, app[SESSION])
        yield
        await app[SHADOW].close()
        await app[JUDGE].close()
        await app[SESSION].close()

    app.cleanup_ctx.append(session_context)
    return app
