"""Scoring finished answers and recording the scores: the I/O edge of `proxy.quality`.

The relay and the mock's writer leave what they saw of a successful answer on the
request (`ANSWER`: a whole body, or a stream's accumulated text and tool calls);
the data handler scores it once the client has its answer, on a later turn of the
event loop (`schedule`), so no client waits for the scorer. The shadow-traffic and
judge code call `record_quality` with answers they obtained themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from proxy.config import Arm
from proxy.dialects import ParsedRequest
from proxy.mock.prompts import PROMPTS
from proxy.quality import (
    Accumulator,
    Finished,
    Result,
    expectations,
    extractable,
    from_body,
    score,
)
from proxy.server import tracing
from proxy.sse import SSEParser

if TYPE_CHECKING:  # the runtime builds the relay, which imports this module
    from proxy.server.judge import Judge
    from proxy.server.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Seen:
    """A successful answer as it passed: a whole JSON body, a stream's accumulation
    (the relay), or the stream's events (the mock, read only when scored)."""

    body: bytes | None = None
    stream: Accumulator | None = None
    events: list[bytes] | None = None

    def finished(self, dialect: str) -> Finished:
        if self.stream is not None:
            return self.stream.found
        if self.events:
            return answer_of(dialect, b"".join(self.events), stream=True) or Finished()
        return from_body(dialect, self.body or b"")


ANSWER = web.RequestKey("quality_answer", Seen)


def answer_of(dialect: str, body: bytes, stream: bool) -> Finished | None:
    """The answer in a complete response (SSE bytes when `stream`); None for embeddings."""
    if not extractable(dialect):
        return None
    if not stream:
        return from_body(dialect, body)
    accumulator = Accumulator(dialect)
    for event in SSEParser().feed(body):
        accumulator.feed(event)
    return accumulator.found


def record_quality(
    runtime: Runtime,
    dialect: str,
    request: ParsedRequest,
    headers: Mapping[str, str],
    answer: Finished,
    arm: Arm,
    backend: str,
    shadow: bool = False,
    judge: Judge | None = None,
) -> Result:
    """Score `answer` to `request` and count it for `arm` in the metrics and window stats.

    `headers` are the app's request headers (`x-llm-task`, `x-brand-context`);
    `shadow` marks a background copy sent to the real provider (`traffic.shadow`):
    its score counts for the real arm, with `shadow="true"` on the metrics.
    """
    result = score(expectations(dialect, request, headers), answer)
    label = "true" if shadow else "false"
    metrics = runtime.metrics
    metrics.quality_score.labels(arm, backend, result.task, label).observe(result.score)
    for reason in result.rejections:
        metrics.quality_rejections.labels(arm, backend, reason, label).inc()
    if result.brand_compliant is not None:
        outcome = "compliant" if result.brand_compliant else "violation"
        metrics.brand_compliance.labels(arm, backend, outcome, label).inc()
    runtime.stats.record_quality(
        arm, result.score, bool(result.rejections), result.brand_compliant, backend
    )
    if judge is not None and answer.text:  # a sampled share also goes to the LLM judge
        question = PROMPTS[dialect](request.payload)
        judge.maybe_judge(arm, backend, shadow, question, answer.text)
    return result


def schedule(
    runtime: Runtime,
    dialect: str,
    request: ParsedRequest,
    headers: Mapping[str, str],
    seen: Seen,
    arm: Arm,
    backend: str,
    judge: Judge | None = None,
) -> None:
    """Score a client's answer on a later loop turn: after its bytes are handed over."""

    def run() -> None:
        score = None
        try:
            score = record_quality(runtime, dialect, request, headers, seen.finished(dialect),
                                   arm, backend, judge=judge).score  # fmt: skip
        except Exception:  # a scorer bug must never touch serving; it is logged, not raised
            log.exception("quality scoring failed (%s, backend %s)", dialect, backend)
        finally:
            tracing.note_quality(score)  # run() has a copy of the request's context

    tracing.score_pending()
    asyncio.get_running_loop().call_soon(run)
