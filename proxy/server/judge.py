"""The LLM judge's I/O half: a sampled answer is scored by a judge model, in the background.

`Judge.maybe_judge` is called with a finished answer (either arm, shadow copies too)
and returns at once; the call runs as a task, never on the client's path. It goes
through the sidecar's own configured provider (`quality.judge.provider`) like any
real call: the budget holds its worst case first and settles what was billed (refused:
not sent), its breaker and rate limit must let it through (one attempt, no retries:
a judge is a sample, not a promise). At most `maxConcurrent` judge calls run; one due
beyond that is skipped. Every way a judgement can fail is counted
(`llm_rollout_quality_judge_failures_total{reason}`) and never reflects on the
answer. Prompts and answers are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import aiohttp

from proxy.budget import NO_TENANT, Refusal
from proxy.config import Arm, Provider
from proxy.config.model import QualityJudge
from proxy.dialects import BadRequest, Usage
from proxy.quality.judge import JudgeRequest, judge_request, parse_score, reply_text, sampled
from proxy.resilience.chain import Chain, Try
from proxy.resilience.ratelimit import estimate_tokens
from proxy.server.keys import MissingKey
from proxy.server.runtime import Runtime
from proxy.server.tasks import cancel_and_wait

log = logging.getLogger("llm_rollout.judge")


class JudgeFailed(Exception):
    """A judgement that produced no score; `reason` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Judge:
    """The judge calls in flight of one sidecar."""

    def __init__(self, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        self.runtime, self.session = runtime, session
        self._tasks: set[asyncio.Task[None]] = set()

    def maybe_judge(self, arm: Arm, backend: str, shadow: bool, question: str, answer: str) -> None:
        """Judge this answer in the background if the sample draws it; returns at once."""
        judge = self.runtime.snapshot.spec.quality.judge
        if judge is None or not sampled(judge.sample_rate, random.random()):
            return
        if len(self._tasks) >= judge.max_concurrent:
            self.runtime.metrics.judge_failures.labels("busy").inc()
            return
        task = asyncio.get_running_loop().create_task(
            self._judge(judge, arm, backend, shadow, question, answer)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the judge calls in flight (at shutdown)."""
        await cancel_and_wait(self._tasks)

    async def _judge(
        self, judge: QualityJudge, arm: Arm, backend: str, shadow: bool, question: str,
        answer: str,
    ) -> None:  # fmt: skip
        try:
            score = await self._call(judge, question, answer)
        except JudgeFailed as failure:
            self.runtime.metrics.judge_failures.labels(failure.reason).inc()
            log.warning("judge %s/%s: %s", judge.provider, judge.model, failure)
            return
        labels = (arm, backend, judge.model, str(shadow).lower())
        self.runtime.metrics.judge_score.labels(*labels).observe(score)
        self.runtime.stats.judged(arm, score, backend)

    async def _call(self, judge: QualityJudge, question: str, answer: str) -> float:
        runtime = self.runtime
        spec = runtime.snapshot.spec
        provider = spec.provider(judge.provider)
        assert provider is not None  # the config validates quality.judge.provider
        call = judge_request(provider.dialect_type, judge.model, question, answer)
        try:
            parsed = call.dialect.parse(call.body, path_model=judge.model)
            key = runtime.keys.get(provider.api_key) if provider.api_key else ""
        except (BadRequest, MissingKey) as error:
            message = f"cannot call provider '{provider.name}': {error}"
            raise JudgeFailed("upstream", message) from None
        admitted = await runtime.budget.admit(call.dialect, [provider], parsed, NO_TENANT)
        if isinstance(admitted, Refusal):
            raise JudgeFailed("budget", admitted.message)
        usage: Usage | None = None  # unknown until the reply is read: the hold is charged
        try:
            chain = Chain(
                spec, provider, runtime.resilience, started=runtime.clock(),
                tokens=estimate_tokens(len(call.body), parsed.max_tokens), draw=random.random,
            )  # fmt: skip
            step = chain.next(runtime.clock())
            if not isinstance(step, Try) or step.provider.name != provider.name:
                usage = Usage()
                raise JudgeFailed("unavailable", f"provider '{provider.name}' is {chain.reason}")
            try:
                if step.wait:
                    await asyncio.sleep(step.wait)
                status, body = await self._post(provider, call, key, chain)
            except asyncio.CancelledError:
                chain.abandon(provider)  # no verdict on the provider: free a half-open probe
                raise
            if status != 200:
                usage = Usage()
                raise JudgeFailed("upstream", f"provider '{provider.name}' answered {status}")
            usage = call.dialect.usage_from_body(body)
        finally:
            runtime.budget.settle(admitted, usage)
        score = parse_score(reply_text(provider.dialect_type, body))
        if score is None:
            raise JudgeFailed("no-score", f"reply of {len(body)} bytes held no 1-5 score")
        return score

    async def _post(
        self, provider: Provider, call: JudgeRequest, key: str, chain: Chain
    ) -> tuple[int, bytes]:
        """One call; the breaker and rate limiter hear how it went."""
        timeouts = provider.timeouts
        path, _, query = call.path.partition("?")
        url = provider.base_url.rstrip("/") + call.dialect.upstream_target(path, query)
        try:
            async with self.session.post(
                url,
                data=call.body,
                headers=call.headers | call.dialect.auth_headers(key),
                timeout=aiohttp.ClientTimeout(total=timeouts.total_ms / 1000),
                allow_redirects=False,
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            chain.failed(provider, None, {}, self.runtime.clock(), time.time())
            raise JudgeFailed("upstream", f"provider '{provider.name}': {error!r}") from None
        tokens = 0
        if (usage := call.dialect.usage_from_body(body)) is not None:
            tokens = usage.input_tokens + usage.output_tokens
        chain.done(provider, response.status, response.headers, True, tokens,
                   self.runtime.clock(), time.time())  # fmt: skip
        return response.status, body
