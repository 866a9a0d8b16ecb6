"""Executing one request's attempt chain against real providers.

`proxy.resilience.chain.Chain` decides (which provider, how long to wait, when to
fall back, when to give up); this module only does what it says: sleeps, calls
`open_upstream`, discards a failed answer that will be retried, relays the one
that is final. Retries happen only before anything was relayed: once `relay`
starts writing, the answer is the client's, and a stream that then dies ends with
the dialect's error event (and counts against the provider's breaker).

`serve_real` is the one place where a request's real call starts and ends: a
budget reservation wraps it (reserve before, settle with `Served.usage` after).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, replace
from decimal import Decimal

import aiohttp
from aiohttp import web

from proxy.config import LLMRolloutSpec, Provider
from proxy.dialects import BadRequest, Dialect, ErrorKind, ParsedRequest, Usage
from proxy.dialects.azure import azure_target
from proxy.dialects.base import StreamFilter, dumps
from proxy.redact import Redactor
from proxy.resilience import retry
from proxy.resilience.chain import Chain, GiveUp, UseMock
from proxy.resilience.ratelimit import estimate_tokens
from proxy.routing import Decision
from proxy.server import tracing
from proxy.server.budget import BudgetGate, Ticket, billed_usage
from proxy.server.keys import MissingKey
from proxy.server.outcome import Outcome
from proxy.server.relay import (
    REQUEST_ID,
    Deliver,
    UpstreamFailure,
    open_upstream,
    relay,
)
from proxy.server.runtime import Runtime
from proxy.server.translated import relay_translated
from proxy.translate import Translation, Upstream

log = logging.getLogger("llm_rollout.attempts")


@dataclass(slots=True)
class Served:
    """How a real request ended. `response` None: the chain reached the mock."""

    response: web.StreamResponse | None
    backend: str
    status: int
    #: What the relay learned of the answer; None when the sidecar answered itself.
    outcome: Outcome | None = None
    #: An attempt may have run at a provider without the sidecar learning its usage
    #: (a timeout or a dropped connection after sending): the budget charges the hold.
    uncertain: bool = False

    @property
    def usage(self) -> Usage:
        return self.outcome.usage if self.outcome is not None else Usage()

    @property
    def stream_error(self) -> str | None:
        return self.outcome.stream_error if self.outcome is not None else None

    @property
    def first_byte_at(self) -> float | None:
        return self.outcome.first_byte_at if self.outcome is not None else None


def settle(budget: BudgetGate, ticket: Ticket, spec: LLMRolloutSpec, served: Served,
           *, shadow: bool = False) -> Decimal | None:  # fmt: skip
    """Settle the budget hold of a walked chain with what was billed; returns the cost.

    The hold covers the whole chain and is settled once: an answer that may have run
    at a provider without the sidecar learning its usage charges the whole hold; an
    error or a chain that ended at the mock charges nothing.
    """
    billed = billed_usage(served.outcome) if served.outcome is not None else Usage()
    return budget.settle(
        ticket,
        None if served.uncertain else billed,
        answered_by=spec.provider(served.backend),
        shadow=shadow,
    )


def error_response(
    dialect: Dialect, kind: ErrorKind, message: str, headers: dict[str, str]
) -> web.Response:
    """The sidecar's own error; no provider id exists, so the sidecar's is `x-request-id` too."""
    request_id = headers.get(REQUEST_ID)
    if request_id is not None:
        headers = {"x-request-id": request_id, **headers}
    return web.Response(
        status=kind.status,
        body=dialect.error_body(kind, message, request_id),
        content_type="application/json",
        headers=headers,
    )


async def serve_real(
    request: web.Request,
    session: aiohttp.ClientSession,
    runtime: Runtime,
    spec: LLMRolloutSpec,
    dialect: Dialect,
    decision: Decision,
    parsed: ParsedRequest,
    headers: dict[str, str],
    started: float,
    deliver: Deliver = relay,
    cross: bool = False,
) -> Served:
    """Walk the chain until an answer is relayed, the mock is due, or nothing is left.

    `headers` (the sidecar's own response headers) are updated with the backend
    that answered, the route reason and `x-should-retry: false` once retried.
    `started` is the request's arrival on `runtime.clock`: the deadline counts from it.
    `deliver` takes the final answer: `relay` to the client, or `consume` for a
    shadow copy nobody waits for. `cross`: the request can be translated, so the
    chain may reach providers of other dialects (their answers are translated back).
    """
    assert decision.provider is not None
    chain = Chain(
        spec,
        decision.provider,
        runtime.resilience,
        started=started,
        tokens=estimate_tokens(len(parsed.raw), parsed.max_tokens),
        draw=random.random,
        cross=cross,
    )
    walk = _Walk(request, session, runtime, dialect, decision, parsed, headers, chain, deliver)
    return await walk.run()


class _Walk:
    """One request's walk along its chain: the I/O half of `resilience.chain.Chain`."""

    def __init__(
        self,
        request: web.Request,
        session: aiohttp.ClientSession,
        runtime: Runtime,
        dialect: Dialect,
        decision: Decision,
        parsed: ParsedRequest,
        headers: dict[str, str],
        chain: Chain,
        deliver: Deliver,
    ) -> None:
        self.request, self.session, self.runtime = request, session, runtime
        self.dialect, self.decision, self.parsed = dialect, decision, parsed
        self.headers, self.chain, self.deliver = headers, chain, deliver
        self.clock = runtime.clock
        self.request_id = headers[REQUEST_ID]
        self.last: UpstreamFailure | None = None
        self.uncertain = False

    async def run(self) -> Served:
        while True:
            step = self.chain.next(self.clock())
            if isinstance(step, UseMock):
                self._stamp("mock")
                return Served(None, "mock", 0, uncertain=self.uncertain)
            if isinstance(step, GiveUp):
                answer = _give_up(self.runtime, self.dialect, self.chain, self.last, self.headers)
                answer.uncertain = self.uncertain
                return answer
            try:
                if step.wait:
                    await asyncio.sleep(step.wait)
                with tracing.child_span(
                    self.request, f"attempt {step.provider.name}",
                    attempt_of=step.provider.name, base_url=step.provider.base_url,
                ):  # fmt: skip
                    served = await self._call(step.provider)
            except asyncio.CancelledError:
                self.chain.abandon(step.provider)  # no verdict: free a half-open probe
                raise
            if served is not None:
                return served

    async def _call(self, provider: Provider) -> Served | None:
        """One real call to a provider: where it starts and where it ends.

        Returns how the request ended, or None when the call failed before anything
        was relayed and the chain has another step.
        """
        try:
            key = self.runtime.pool.pick(provider)
        except MissingKey as error:
            self.last = UpstreamFailure(
                ErrorKind.UPSTREAM,
                f"provider '{provider.name}' has no API key ({error}); the request was not "
                "sent. Fix the provider's apiKey in the config.",
                outcome="no-key",
            )
            log.error("request %s: %s", self.request_id, self.last)
            return None if self.chain.skip(provider) else self._failure(provider, self.last)
        try:
            translation, target, body, stream_filter = self._outbound(provider)
        except BadRequest as error:
            self.last = UpstreamFailure(
                error.kind, f"provider '{provider.name}' cannot serve it: {error}",
                outcome="untranslatable",
            )  # fmt: skip
            log.info("request %s: %s", self.request_id, self.last)
            return None if self.chain.skip(provider) else self._failure(provider, self.last)
        try:
            for _ in range(len(provider.key_sources) or 1):  # a pool: once per key at most
                upstream = await _attempt(
                    self.session, self.request, self.dialect, provider, key, body,
                    self.chain.deadline - self.clock(), target,
                )  # fmt: skip
                status = upstream.status
                tracing.note_attempt_status(self.request, status)
                self.runtime.metrics.attempts.labels(provider.name, str(status)).inc()
                other = self.runtime.pool.answered(provider, key, status, upstream.headers)
                if other is None:
                    break
                upstream.release()  # that key is refused or resting: the same call, another key
                key = other
            if (
                status != 200
                and retry.retryable(status)
                and self.chain.failed(provider, status, upstream.headers, self.clock(), time.time())
            ):
                log.info("request %s: provider '%s' answered %d; next step of the chain",
                         self.request_id, provider.name, status)  # fmt: skip
                upstream.release()
                return None
            self._stamp(provider.name)
            if translation is not None and target is not None:
                response, outcome = await relay_translated(
                    self.request, upstream, translation, target, self.headers, Redactor([key])
                )
            else:
                response, outcome = await self.deliver(
                    self.request, upstream, self.dialect, self.headers, stream_filter,
                    Redactor([key]),
                )  # fmt: skip
        except UpstreamFailure as failure:
            self.last = failure
            self.uncertain = self.uncertain or failure.may_have_run
            self.runtime.metrics.attempts.labels(provider.name, failure.outcome).inc()
            log.warning("request %s: %s", self.request_id, failure)
            if self.chain.failed(provider, None, {}, self.clock(), time.time()):
                return None
            return self._failure(provider, failure)
        self.chain.done(
            provider,
            outcome.status,
            upstream.headers,
            outcome.stream_error is None,
            outcome.usage.input_tokens + outcome.usage.output_tokens,
            self.clock(),
            time.time(),
        )
        if outcome.stream_error:
            self.runtime.metrics.attempts.labels(
                provider.name, f"stream-{outcome.stream_error}"
            ).inc()
        return Served(response, provider.name, outcome.status, outcome, self.uncertain)

    def _outbound(
        self, provider: Provider
    ) -> tuple[Translation | None, Upstream | None, bytes, StreamFilter | None]:
        """What to send `provider`: the translation its answer goes through (None: it
        speaks the client's dialect), a replacement path (None: the app's own), the
        body, and the filter its stream passes through.

        Bytes through when the provider speaks the client's dialect and runs the model
        asked for; the model renamed when `Provider.models` maps it; translated
        (`proxy.translate`) when the provider speaks another dialect. Raises
        `BadRequest` when the provider cannot express the request.
        """
        translation, target, body, stream_filter = self._outbound_body(provider)
        if (azure := provider.azure_settings) is None:
            return translation, target, body, stream_filter
        request = self.request
        path = (
            target.path
            if target is not None
            else self.dialect.upstream_target(
                request.rel_url.raw_path, request.rel_url.raw_query_string
            )
        )
        model = provider.model_for(self.parsed.model)
        headers = target.headers if target is not None else {}
        turn = target.turn if target is not None else 0
        return (
            translation,
            Upstream(azure_target(path, model, azure), headers, body, turn),
            body,
            stream_filter,
        )

    def _outbound_body(
        self, provider: Provider
    ) -> tuple[Translation | None, Upstream | None, bytes, StreamFilter | None]:
        """`_outbound` below the provider's base URL as OpenAI-style APIs address it."""
        parsed, dialect = self.parsed, self.dialect
        model = provider.model_for(parsed.model)
        if provider.dialect_type != dialect.provider_type:
            translation = Translation(dialect, provider.dialect_type, parsed, provider.name)
            sent = translation.request(model)
            return translation, sent, sent.body, None
        if model == parsed.model:
            body, stream_filter = dialect.upstream_body(parsed)
            return None, None, body, stream_filter
        if "model" not in parsed.payload:  # Gemini: the model is in the path
            path = dialect.upstream_target(
                self.request.rel_url.raw_path, self.request.rel_url.raw_query_string
            ).replace(f"/models/{parsed.model}:", f"/models/{model}:", 1)
            body, stream_filter = dialect.upstream_body(parsed)
            return None, Upstream(path, {}, body, 0), body, stream_filter
        payload = parsed.payload | {"model": model}
        renamed = replace(parsed, model=model, payload=payload, raw=dumps(payload))
        body, stream_filter = dialect.upstream_body(renamed)
        return None, None, body, stream_filter

    def _failure(self, provider: Provider, failure: UpstreamFailure) -> Served:
        """The last failure as the answer, in the client's dialect."""
        self._stamp(provider.name)
        body = error_response(self.dialect, failure.kind, f"llm-rollout: {failure}", self.headers)
        return Served(body, provider.name, failure.kind.status, uncertain=self.uncertain)

    def _stamp(self, backend: str) -> None:
        self.headers["x-llm-backend"] = backend
        self.headers["x-llm-route-reason"] = self.chain.reason or self.decision.reason
        if self.chain.retried:
            self.headers["x-should-retry"] = "false"


async def _attempt(
    session: aiohttp.ClientSession,
    request: web.Request,
    dialect: Dialect,
    provider: Provider,
    key: str,
    body: bytes,
    remaining: float,
    target: Upstream | None,
) -> aiohttp.ClientResponse:
    """One call to a provider, cut short when the chain's deadline comes first."""
    try:
        async with asyncio.timeout(max(remaining, 0.001)):
            return await open_upstream(session, request, dialect, provider, key, body, target)
    except TimeoutError:
        raise UpstreamFailure(
            ErrorKind.TIMEOUT,
            f"provider '{provider.name}' did not answer before the retry deadline "
            "(spec.retry.deadlineMs)",
            outcome="timeout",
        ) from None


def _give_up(
    runtime: Runtime,
    dialect: Dialect,
    chain: Chain,
    last: UpstreamFailure | None,
    headers: dict[str, str],
) -> Served:
    """No backend left: the last failure, or 503 when no provider could even be tried."""
    now = runtime.clock()
    reopen = min(
        (chain.registry.state_for(p, chain.spec, now).breaker.reopens_in(now)
         for p in chain.entries if p),
        default=0.0,
    )  # fmt: skip
    headers["x-llm-backend"] = "none"
    headers["x-llm-route-reason"] = chain.reason or "no-provider"
    headers["retry-after"] = str(max(1, math.ceil(reopen)))
    if chain.retried:
        headers["x-should-retry"] = "false"
    runtime.metrics.refused.labels(dialect.name, "no-backend").inc()
    kind = last.kind if last is not None else ErrorKind.UNAVAILABLE
    names = ", ".join(p.name for p in chain.entries if p)
    message = (
        f"llm-rollout: no provider could answer ({names}; {chain.reason}); "
        f"last failure: {last or 'none, none could be tried'}. "
        f"Retry after {headers['retry-after']} s."
    )
    return Served(error_response(dialect, kind, message, headers), "none", kind.status)
