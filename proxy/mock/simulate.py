"""Simulation profiles: how long the mock takes and how it fails (`spec.mock`).

A migration is only safe if the app already copes with what real providers do:
slow first tokens, rate limits with `retry-after`, 5xx, Anthropic's 529, hung
requests and streams that die half-way. The mock does all of it on purpose, in the
client's own dialect (status, headers, body, stream error event), so the SDK raises
the same exception it will raise in production.

Everything is drawn from a random source fixed by `mock.seed`, the request bytes
and how many times that exact request was seen (`Occurrences`), so a failing run
replays exactly and an SDK retry of a failed request draws afresh.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict
from dataclasses import dataclass

from proxy.config.model import MockErrors, MockLatency
from proxy.dialects import Dialect, ErrorKind

#: The z-score of the 95th percentile of a normal distribution.
_Z95 = 1.6448536269514722

FAULT_KINDS = ("rate_limit", "server_error", "unavailable", "overloaded", "timeout", "stream_cut")
_DEFAULT_KINDS = ("rate_limit", "server_error", "unavailable", "overloaded")
_MESSAGES = {
    "rate_limit": "Rate limit reached (simulated by llm-rollout mock). Retry after {after}s.",
    "server_error": "The server had an error processing your request (simulated by llm-rollout "
    "mock). Retry the request.",
    "unavailable": "The service is temporarily unavailable (simulated by llm-rollout mock).",
    "overloaded": "Overloaded (simulated by llm-rollout mock).",
    "timeout": "Request timed out (simulated by llm-rollout mock).",
    "stream_cut": "The stream was interrupted (simulated by llm-rollout mock).",
}


class Occurrences:
    """How many times each request body was seen: the SDK's retry of a failed request must
    draw a new fault, yet a replayed run must draw the same ones. Bounded memory."""

    def __init__(self, limit: int = 10_000) -> None:
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._limit = limit

    def next(self, raw: bytes) -> int:
        key = hashlib.blake2b(raw, digest_size=16).digest()
        count = self._seen.pop(key, -1) + 1
        self._seen[key] = count
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return count


def simulation_rng(seed: int, raw: bytes, occurrence: int) -> random.Random:
    """The random source for timing and faults, apart from the content's, so a fault
    does not change what a later successful answer to the same request says."""
    digest = hashlib.blake2b(
        raw, digest_size=8, key=f"sim:{seed}:{occurrence}".encode()[:64]
    ).digest()
    return random.Random(int.from_bytes(digest, "big"))


def draw_fault(errors: MockErrors, rng: random.Random, stream: bool) -> str | None:
    """The fault to inject, or None. A stream cut needs a stream; others fit any request."""
    if errors.rate <= 0 or rng.random() >= errors.rate:
        return None
    weights = {kind: getattr(errors.kinds, kind) for kind in FAULT_KINDS}
    if not any(weights.values()):
        weights = {kind: 1.0 for kind in _DEFAULT_KINDS}
    if not stream:
        weights.pop("stream_cut", None)
    kinds = [k for k, w in weights.items() if w > 0]
    if not kinds:
        return None
    return rng.choices(kinds, weights=[weights[k] for k in kinds])[0]


def first_token_seconds(latency: MockLatency, rng: random.Random) -> float:
    """Time to first token from a lognormal fitted to the profile's p50 and p95.

    Latencies are right-skewed (a long tail of slow answers), which a lognormal
    models with two numbers: mu = ln(p50), sigma = ln(p95/p50) / z95.
    """
    p50, p95 = latency.first_token_ms.p50, latency.first_token_ms.p95
    if p50 <= 0:
        return rng.uniform(0, p95) / 1000 if p95 > 0 else 0.0
    if p95 <= p50:
        return p50 / 1000
    sigma = math.log(p95 / p50) / _Z95
    return rng.lognormvariate(math.log(p50), sigma) / 1000


def generation_seconds(latency: MockLatency, output_tokens: int) -> float:
    """How long writing `output_tokens` takes at the profile's tokens per second."""
    if latency.tokens_per_second <= 0:
        return 0.0
    return output_tokens / latency.tokens_per_second


@dataclass(frozen=True, slots=True)
class FaultResponse:
    """A fault as the provider sends it: status, headers and body, after `wait` seconds."""

    status: int
    headers: dict[str, str]
    body: bytes
    wait: float


def error_kind(fault: str, dialect: Dialect) -> ErrorKind:
    """The provider's status for a fault: only Anthropic has 529; others say 503."""
    if fault == "overloaded":
        return (
            ErrorKind.OVERLOADED if dialect.provider_type == "anthropic" else ErrorKind.UNAVAILABLE
        )
    return {
        "rate_limit": ErrorKind.RATE_LIMITED,
        "server_error": ErrorKind.INTERNAL,
        "unavailable": ErrorKind.UNAVAILABLE,
        "timeout": ErrorKind.TIMEOUT,
        "stream_cut": ErrorKind.OVERLOADED
        if dialect.provider_type == "anthropic"
        else ErrorKind.INTERNAL,
    }[fault]


def fault_response(
    fault: str, dialect: Dialect, errors: MockErrors, request_id: str | None
) -> FaultResponse:
    """A whole-request fault (not a stream cut) in the dialect's own error shape."""
    kind = error_kind(fault, dialect)
    message = _MESSAGES[fault].format(after=errors.retry_after_seconds)
    headers: dict[str, str] = {}
    if fault == "rate_limit":
        headers["retry-after"] = str(errors.retry_after_seconds)
    wait = errors.timeout_seconds if fault == "timeout" else 0.0
    return FaultResponse(kind.status, headers, dialect.error_body(kind, message, request_id), wait)


def cut_stream(
    events: list[bytes], dialect: Dialect, rng: random.Random
) -> tuple[list[bytes], int]:
    """The stream cut mid-way: some events, then the dialect's error event.

    Returns the new events and how many of the original were sent: a third or more,
    so the client has seen content before the failure, as in the cases that hurt.
    """
    # Past the opening events (which carry no content in most dialects), before the end.
    last = max(1, len(events) - 2)
    keep = rng.randint(min(last, max(1, len(events) // 3)), last)
    error = dialect.stream_error(error_kind("stream_cut", dialect), _MESSAGES["stream_cut"])
    return [*events[:keep], error], keep
