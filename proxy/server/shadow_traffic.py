"""Shadow traffic: copies of mock-routed requests sent to the real arm, answers discarded.

`traffic.shadow.percent` of the requests the weight sends to the mock (which ones:
`proxy.routing.shadow_target`) are also sent, in the background, to the provider they
would have gone to. The client's answer is the mock's, bytes and timing: the copy is
started only once the mock's answer is written, and nothing on the client's path waits
for it. A copy is a real call like any other:

- the budget holds its worst case before it is sent and settles what was billed; when
  the budget cannot hold it, it is not sent (result ``refused``);
- it walks the same attempt chain (`attempts.serve_real`): retries, rate limits, and
  breakers. A copy's failure is real evidence about the provider, so it counts against
  the provider's breaker like a client's request would -- a provider that fails copies
  is failing, and better found before users are moved to it;
- its answer is read in full (`relay.consume`: streams read and parsed, relayed to
  nobody), priced, and recorded in the window stats as the real arm with
  ``shadow_requests`` (latency, errors and cost too, so a setShadow step is judged on
  it), then dropped. Never recorded into cassettes.

At most `maxConcurrent` copies are in flight; a copy due while that many run is skipped
(result ``skipped``). Shutdown cancels copies in flight; a cancelled copy's hold is
charged whole (it may have run at the provider).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

import aiohttp
from aiohttp import web

from proxy.budget import Refusal
from proxy.config import Provider
from proxy.dialects import Dialect, ParsedRequest
from proxy.resilience.chain import fallback_chain
from proxy.routing import Decision, shadow_target
from proxy.server.attempts import serve_real, settle
from proxy.server.quality import answer_of, record_quality
from proxy.server.relay import REQUEST_ID, consume
from proxy.server.runtime import Runtime, Snapshot
from proxy.server.tasks import cancel_and_wait

log = logging.getLogger("llm_rollout.shadow")


class ShadowTraffic:
    """The copies in flight of one sidecar, and the one call the data handler makes."""

    def __init__(self, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        self.runtime, self.session = runtime, session
        self._tasks: set[asyncio.Task[None]] = set()

    def maybe_copy(
        self,
        request: web.Request,
        snapshot: Snapshot,
        dialect: Dialect,
        parsed: ParsedRequest,
        decision: Decision,
        tenant: str,
    ) -> None:
        """Start a copy of this mock-answered request if the draw says so; returns at once."""
        spec = snapshot.spec
        if spec.traffic.shadow is None:
            return
        provider = shadow_target(spec, dialect.provider_type, decision, random.random())
        if provider is None:
            return
        if len(self._tasks) >= spec.traffic.shadow.max_concurrent:
            self.runtime.metrics.shadow_requests.labels(provider.name, "skipped").inc()
            return
        copy = _Copy(
            self.runtime, request, self.session, snapshot, dialect, parsed, provider, tenant
        )
        task = asyncio.get_running_loop().create_task(copy.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel the copies in flight and wait for them to settle their budget holds."""
        await cancel_and_wait(self._tasks)


class _Copy:
    """One shadow copy: admit, call, read, record, discard."""

    def __init__(
        self,
        runtime: Runtime,
        request: web.Request,
        session: aiohttp.ClientSession,
        snapshot: Snapshot,
        dialect: Dialect,
        parsed: ParsedRequest,
        provider: Provider,
        tenant: str,
    ) -> None:
        self.runtime, self.request, self.session = runtime, request, session
        self.snapshot, self.dialect, self.parsed = snapshot, dialect, parsed
        self.provider, self.tenant = provider, tenant
        self.request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex

    async def run(self) -> None:
        runtime, spec, provider = self.runtime, self.snapshot.spec, self.provider
        count = runtime.metrics.shadow_requests
        reachable = [p for p in fallback_chain(spec, provider) if p is not None]
        admitted = await runtime.budget.admit(self.dialect, reachable, self.parsed, self.tenant)
        if isinstance(admitted, Refusal):
            count.labels(provider.name, "refused").inc()
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            served = await serve_real(
                self.request, self.session, runtime, spec, self.dialect,
                Decision(provider, "weight"), self.parsed, {REQUEST_ID: self.request_id},
                runtime.clock(), deliver=consume,
            )  # fmt: skip
            cost = settle(runtime.budget, admitted, spec, served, shadow=True)
        except Exception:  # a bug, not the provider's answer: say so, never the client's
            log.exception("request %s: shadow copy to '%s' broke", self.request_id, provider.name)
            count.labels(provider.name, "failed").inc()
            return
        finally:
            if not admitted.settled:  # cancelled or broken: charge the whole hold
                runtime.budget.settle(admitted, None, shadow=True)
        # A chain that ended at the mock is the real arm failing, as on the client's path.
        status = 502 if served.response is None else served.status
        good = 200 <= status < 300 and served.stream_error is None
        count.labels(provider.name, "sent" if good else "failed").inc()
        elapsed, fell_back = loop.time() - began, served.backend != provider.name
        runtime.stats.record("real", status, elapsed, float(cost or 0), shadow=True,
                             provider=provider.name, fell_back=fell_back)  # fmt: skip
        if good and isinstance(served.response, web.Response) and served.response.body:
            # Scored like a client's answer, for the real arm: a setShadow step is judged on
            # the copies' quality too (`record_quality`, shadow="true" on the metrics).
            body = bytes(served.response.body)  # type: ignore[arg-type]
            answer = answer_of(self.dialect.name, body, stream=self.parsed.stream)
            if answer is not None:
                record_quality(runtime, self.dialect.name, self.parsed, self.request.headers,
                               answer, "real", served.backend, shadow=True)  # fmt: skip
