"""The pure resilience state machines, driven by an explicit clock: no sockets, no sleeps."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.config import parse_spec
from proxy.config.model import CircuitBreaker, RateLimit, Retry, Tenants
from proxy.resilience import retry
from proxy.resilience.breaker import Breaker, State
from proxy.resilience.chain import Chain, GiveUp, Try, UseMock, fallback_chain, health
from proxy.resilience.ratelimit import Limiter, reset_after
from proxy.resilience.registry import Registry
from proxy.resilience.tenants import TenantQuotas

POLICY = CircuitBreaker(
    failure_ratio=0.5, min_requests=4, window_seconds=10, open_seconds=5, half_open_probes=2
)


def test_breaker_opens_at_min_requests_and_ratio_not_before() -> None:
    moves: list[tuple[str, State]] = []
    breaker = Breaker("p", POLICY, lambda name, state: moves.append((name, state)))
    for _ in range(3):
        breaker.record(False, 0.0)
    assert breaker.state(0.0) is State.CLOSED, "3 failures < minRequests 4"
    breaker.record(False, 0.5)
    assert breaker.state(0.5) is State.OPEN
    assert moves == [("p", State.OPEN)]
    assert not breaker.allow(1.0), "open: the provider is skipped"


def test_breaker_ratio_below_threshold_stays_closed() -> None:
    breaker = Breaker("p", POLICY)
    for i in range(20):
        breaker.record(i % 3 != 2, float(i) / 10)  # every third fails: below 0.5
    assert breaker.state(2.0) is State.CLOSED


def test_breaker_window_forgets_old_failures() -> None:
    breaker = Breaker("p", POLICY)
    for _ in range(3):
        breaker.record(False, 0.0)
    breaker.record(False, 11.0)  # the first three are out of the 10 s window
    assert breaker.state(11.0) is State.CLOSED
    assert breaker.window(11.0) == (0, 1)


def test_breaker_half_open_probes_close_or_reopen() -> None:
    moves: list[State] = []
    breaker = Breaker("p", POLICY, lambda _, state: moves.append(state))
    for _ in range(4):
        breaker.record(False, 0.0)
    assert breaker.reopens_in(3.0) == pytest.approx(2.0)
    assert breaker.state(5.0) is State.HALF_OPEN
    assert breaker.allow(5.0)
    assert breaker.allow(5.0)
    assert not breaker.allow(5.0), "only halfOpenProbes requests while half-open"
    breaker.record(False, 5.1)
    assert breaker.state(5.1) is State.OPEN, "a failed probe re-opens"
    assert breaker.state(10.1) is State.HALF_OPEN
    assert breaker.allow(10.1)
    assert breaker.allow(10.1)
    breaker.record(True, 10.2)
    assert breaker.state(10.2) is State.HALF_OPEN
    breaker.record(True, 10.3)
    assert breaker.state(10.3) is State.CLOSED
    assert moves == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, True), (408, True), (409, True), (429, True), (500, True), (503, True),
     (529, True), (400, False), (401, False), (404, False), (200, False)],
)  # fmt: skip
def test_retryable_statuses(status: int | None, expected: bool) -> None:
    assert retry.retryable(status) is expected


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = Retry(initial_backoff_ms=100, max_backoff_ms=1000)
    assert retry.backoff(1, policy, 0.999) == pytest.approx(0.0999)
    assert retry.backoff(3, policy, 0.5) == pytest.approx(0.2)
    assert retry.backoff(10, policy, 0.999) <= 1.0, "capped at maxBackoffMs"
    assert retry.backoff(2, policy, 0.0) == 0.0


def test_retry_after_forms() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry.retry_after(CIMultiDict({"retry-after-ms": "250"}), now) == 0.25
    assert retry.retry_after(CIMultiDict({"Retry-After": "7"}), now) == 7.0
    assert retry.retry_after(CIMultiDict({"retry-after": date}), now) == pytest.approx(30, abs=1)
    assert retry.retry_after(CIMultiDict({"retry-after": "soon"}), now) is None
    assert retry.retry_after(CIMultiDict(), now) is None
    policy = Retry(max_backoff_ms=5000)
    assert retry.delay(1, policy, 0.5, 7.0) is None, "asked for more than maxBackoff: move on"
    assert retry.delay(1, policy, 0.5, 2.0) == 2.0, "the provider's word, not our jitter"


def test_rate_limit_waits_briefly_then_refuses() -> None:
    limiter = Limiter(RateLimit(requests_per_minute=60), now=0.0)  # one a second
    assert all(limiter.reserve(10, 0.0, max_wait=0.0) == 0.0 for _ in range(60))
    assert limiter.reserve(10, 0.0, max_wait=0.0) is None, "bucket empty, no wait allowed"
    assert limiter.reserve(10, 0.0, max_wait=1.5) == pytest.approx(1.0)
    assert limiter.reserve(10, 0.0, max_wait=1.5) is None, "the next would wait 2 s"
    assert limiter.refused == 2


def test_rate_limit_tokens_and_settle() -> None:
    limiter = Limiter(RateLimit(tokens_per_minute=600), now=0.0)  # 10 tokens a second
    assert limiter.reserve(500, 0.0, max_wait=0.0) == 0.0
    assert limiter.reserve(500, 0.0, max_wait=0.0) is None
    limiter.settle(estimated=500, actual=50, now=0.0)  # the answer used far less
    assert limiter.reserve(500, 0.0, max_wait=0.0) == 0.0


def test_rate_limit_follows_the_provider() -> None:
    limiter = Limiter(RateLimit(requests_per_minute=1000), now=0.0)
    limiter.observe(200, CIMultiDict({"x-ratelimit-remaining-requests": "2"}), None, 0.0)
    assert limiter.reserve(1, 0.0, 0.0) == 0.0
    assert limiter.reserve(1, 0.0, 0.0) == 0.0
    assert limiter.reserve(1, 0.0, 0.0) is None, "the provider said 2 left"
    unlimited = Limiter(None, now=0.0)
    unlimited.observe(429, CIMultiDict(), 3.0, 0.0)
    assert unlimited.reserve(1, 1.0, max_wait=1.0) is None, "paused 3 s after a 429"
    assert unlimited.reserve(1, 1.0, max_wait=2.0) == pytest.approx(2.0)
    unlimited.observe(200, CIMultiDict({"anthropic-ratelimit-requests-remaining": "0"}), None, 5)
    assert unlimited.reserve(1, 5.0, 0.0) is None, "no quota left: paused"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("2m3.5s", 123.5), ("0h1m0s", 60.0), ("0s", 0.0),
     ("2026-11-29T00:00:30Z", 30.0), ("2026-11-29T00:00:30+00:00", 30.0),
     ("2026-11-29T00:00:30", None), ("soon", None), ("", None), (None, None),
     ("99h", 3600.0)],
)  # fmt: skip
def test_reset_headers_are_read_in_both_providers_forms(
    text: str | None, seconds: float | None
) -> None:
    midnight = datetime(2026, 11, 29, tzinfo=UTC).timestamp()
    assert reset_after(text, midnight) == (None if seconds is None else pytest.approx(seconds))


def test_an_exhausted_quota_pauses_until_its_reset() -> None:
    openai = Limiter(None, now=0.0)
    openai.observe(200, CIMultiDict({"x-ratelimit-remaining-tokens": "0",
                                     "x-ratelimit-reset-tokens": "6s"}), None, 0.0)  # fmt: skip
    assert openai.reserve(1, 5.0, max_wait=0.5) is None, "tokens reset at 6 s, not after 1 s"
    assert openai.reserve(1, 5.0, max_wait=1.0) == pytest.approx(1.0)
    anthropic = Limiter(None, now=0.0)
    wall = datetime(2026, 11, 29, tzinfo=UTC).timestamp()
    headers = {"anthropic-ratelimit-requests-remaining": "7",
               "anthropic-ratelimit-requests-reset": "2026-11-29T00:00:04Z"}  # fmt: skip
    anthropic.observe(429, CIMultiDict(headers), None, 0.0, wall)
    assert anthropic.reserve(1, 3.0, max_wait=0.5) is None, "a 429 without retry-after: reset"
    assert anthropic.reserve(1, 3.0, max_wait=1.0) == pytest.approx(1.0)
    asked = Limiter(None, now=0.0)
    asked.observe(429, CIMultiDict({"x-ratelimit-reset-requests": "30s"}), 2.0, 0.0)
    assert asked.reserve(1, 2.0, max_wait=0.0) == 0.0, "retry-after wins over the reset"


def test_tenant_quota_refuses_with_retry_after() -> None:
    quotas = TenantQuotas()
    tenants = Tenants.model_validate(
        {"header": "x-tenant-id", "default": {"requestsPerMinute": 2},
         "overrides": {"big": {"requestsPerMinute": 120}}}
    )  # fmt: skip
    assert quotas.admit(tenants, "a", 0.0) is None
    assert quotas.admit(tenants, "a", 0.0) is None
    assert quotas.admit(tenants, "a", 0.0) == 30, "one request per 30 s refills"
    assert quotas.admit(tenants, "b", 0.0) is None, "tenants do not share a bucket"
    assert all(quotas.admit(tenants, "big", 0.0) is None for _ in range(120))
    assert quotas.admit(tenants, "a", 30.0) is None
    assert quotas.admit(None, "a", 0.0) is None, "no tenants configured: no quota"


def _spec(**extra: Any) -> Any:
    providers = [
        {"name": "a", "type": "openai", "baseURL": "http://127.0.0.1:1/v1"},
        {"name": "b", "type": "openai", "baseURL": "http://127.0.0.1:2/v1"},
        {"name": "c", "type": "anthropic", "baseURL": "http://127.0.0.1:3"},
    ]
    return parse_spec({"providers": providers, "traffic": {"realWeight": 100}} | extra)


def _chain(spec: Any, registry: Registry, started: float = 0.0) -> Chain:
    return Chain(spec, spec.providers[0], registry, started=started, tokens=10, draw=lambda: 0.5)


def test_fallback_chain_keeps_the_dialect_and_stops_at_mock() -> None:
    spec = _spec(fallback=["a", "c", "b", "mock", "b"])
    assert [p.name if p else "mock" for p in fallback_chain(spec, spec.providers[0])] == [
        "a", "b", "mock",
    ]  # fmt: skip
    assert fallback_chain(_spec(), _spec().providers[0]) == [_spec().providers[0]], (
        "no fallback configured: only the routed provider"
    )


def test_chain_retries_then_falls_back_then_mocks() -> None:
    spec = _spec(fallback=["a", "b", "mock"], retry={"maxAttempts": 2, "initialBackoffMs": 100})
    registry = Registry()
    registry.sync(spec, 0.0)
    chain = _chain(spec, registry)
    assert chain.next(0.0) == Try(spec.providers[0], 0.0)
    assert chain.failed(spec.providers[0], 503, CIMultiDict(), 0.1, 0.0)
    assert chain.next(0.1) == Try(spec.providers[0], pytest.approx(0.05)), "backoff, same one"
    assert chain.failed(spec.providers[0], None, CIMultiDict(), 0.2, 0.0)
    step = chain.next(0.2)
    assert step == Try(spec.providers[1], 0.0)
    assert chain.reason == "fallback:a"
    headers = CIMultiDict({"retry-after": "60"})
    assert chain.failed(spec.providers[1], 429, headers, 0.3, 0.0), "mock is still ahead"
    assert chain.next(0.3) == UseMock(), "60 s > maxBackoff: no wait on b"
    assert chain.reason == "fallback:b"
    assert chain.attempts == {"a": 2, "b": 1}
    assert chain.retried


def test_chain_skips_open_breakers_and_gives_up_without_mock() -> None:
    spec = _spec(fallback=["a", "b"], circuitBreaker={"minRequests": 1, "openSeconds": 5})
    registry = Registry()
    registry.sync(spec, 0.0)
    registry.get("a").breaker.record(False, 0.0)
    chain = _chain(spec, registry)
    assert chain.next(0.0) == Try(spec.providers[1], 0.0)
    assert chain.reason == "breaker-open:a"
    assert not chain.failed(spec.providers[1], 500, CIMultiDict(), 0.1, 0.0), (
        "b's breaker opened on that failure and nothing is after it: relay the failure"
    )
    assert chain.next(0.1) == GiveUp()
    assert not chain.retried


def test_chain_deadline_bounds_waits() -> None:
    spec = _spec(
        fallback=["a", "mock"],
        retry={"maxAttempts": 5, "initialBackoffMs": 1000, "maxBackoffMs": 1000,
               "deadlineMs": 1500},
    )  # fmt: skip
    registry = Registry()
    registry.sync(spec, 0.0)
    chain = _chain(spec, registry)
    assert isinstance(chain.next(0.0), Try)
    assert chain.failed(spec.providers[0], 500, CIMultiDict(), 0.5, 0.0)  # waits 0.5: fits
    assert isinstance(chain.next(0.5), Try)
    assert chain.failed(spec.providers[0], 500, CIMultiDict(), 1.4, 0.0)  # 1.9 > deadline
    assert chain.next(1.4) == UseMock()
    assert chain.attempts == {"a": 2}


def test_registry_keeps_state_of_unchanged_providers() -> None:
    spec = _spec(circuitBreaker={"minRequests": 1})
    registry = Registry()
    registry.sync(spec, 0.0)
    registry.get("a").breaker.record(False, 0.0)
    changed = _spec(circuitBreaker={"minRequests": 1}, traffic={"realWeight": 50})
    registry.sync(changed, 1.0)
    assert registry.states(1.0)["a"] is State.OPEN, "a weight change keeps the open breaker"
    moved = changed.model_copy(
        update={"providers": [changed.providers[0].model_copy(update={"base_url": "http://x"})]}
    )
    registry.sync(moved, 2.0)
    assert registry.states(2.0) == {"a": State.CLOSED}, "a redefined provider starts fresh"


def test_a_new_rate_limit_share_resizes_the_buckets_and_keeps_the_breaker() -> None:
    """A sidecar joining the cluster halves everyone's share: an open breaker stays open,
    and what was used of the old share stays used (no fresh burst)."""
    spec = _spec(circuitBreaker={"minRequests": 1})
    with_limit = spec.model_copy(update={"providers": [
        spec.providers[0].model_copy(update={"rate_limit": RateLimit(requestsPerMinute=600)})
    ]})  # fmt: skip
    registry = Registry()
    registry.sync(with_limit, 0.0)
    state = registry.get("a")
    state.breaker.record(False, 0.0)
    for _ in range(250):
        assert state.limiter.reserve(0, 0.0, max_wait=0.0) is not None
    halved = with_limit.model_copy(update={"providers": [
        with_limit.providers[0].model_copy(update={"rate_limit": RateLimit(requestsPerMinute=300)})
    ]})  # fmt: skip
    registry.sync(halved, 0.0)
    assert registry.get("a") is state
    assert registry.states(0.0)["a"] is State.OPEN
    assert state.limiter.requests is not None
    assert state.limiter.requests.capacity == 300
    assert state.limiter.requests.level == 50, "250 of the minute were used already"
    registry.sync(with_limit, 0.0)
    assert state.limiter.requests.level == 350, "a grown share is there at once"


def test_a_429_is_no_verdict_for_a_half_open_breaker() -> None:
    breaker = Breaker("p", POLICY)
    for _ in range(4):
        breaker.record(False, 0.0)
    assert breaker.state(5.0) is State.HALF_OPEN
    assert breaker.allow(5.0)
    assert breaker.allow(5.0)
    assert not breaker.allow(5.0), "two probes in flight"
    breaker.record(health(429), 5.1)
    assert breaker.state(5.1) is State.HALF_OPEN, "a quota answer does not close it"
    assert breaker.allow(5.1), "its probe slot is free again"
    breaker.record(health(200), 5.2)
    breaker.record(health(200), 5.3)
    assert breaker.state(5.3) is State.CLOSED


def test_half_open_probe_without_verdict_is_not_stuck_forever() -> None:
    breaker = Breaker("p", POLICY)
    for _ in range(4):
        breaker.record(False, 0.0)
    assert breaker.allow(5.0)
    assert breaker.allow(5.0)
    breaker.cancel()  # one probe's request went away before an answer
    assert breaker.allow(5.1), "its slot is free again"
    assert not breaker.allow(5.2)
    assert breaker.allow(10.2), "probes silent for openSeconds: a new round may probe"


@given(
    rpm=st.integers(min_value=1, max_value=600),
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), max_size=300),
    max_wait=st.floats(min_value=0, max_value=1, allow_nan=False),
)
def test_rate_limit_never_admits_more_than_a_minute_allows(
    rpm: int, gaps: list[float], max_wait: float
) -> None:
    """Over any run, requests sent by time T never exceed the burst plus the refill by T."""
    limiter = Limiter(RateLimit(requests_per_minute=rpm), now=0.0)
    now, sends = 0.0, []
    for gap in gaps:
        now += gap
        wait = limiter.reserve(1, now, max_wait)
        if wait is not None:
            assert wait <= max_wait + 1e-9
            sends.append(now + wait)
    for i, at in enumerate(sorted(sends)):
        assert i + 1 <= rpm + at * rpm / 60 + 1e-6


@given(outcomes=st.lists(st.booleans(), max_size=200))
def test_breaker_opens_by_min_requests_consecutive_failures(outcomes: list[bool]) -> None:
    """Whatever came before, minRequests failures in a row (within the window) open it."""
    breaker = Breaker("p", POLICY)
    for ok in outcomes:
        breaker.record(ok, 0.0)
    breaker.state(100.0)  # let any earlier opening run out
    streak = 0
    for _ in range(POLICY.min_requests * 3):
        if breaker.state(100.0) is State.OPEN:
            break
        assert breaker.allow(100.0)
        breaker.record(False, 100.0)
        streak += 1
    assert breaker.state(100.0) is State.OPEN
    assert streak <= POLICY.min_requests


def test_chain_survives_a_reload_that_removes_its_provider() -> None:
    spec = _spec(fallback=["a", "b"])
    registry = Registry()
    registry.sync(spec, 0.0)
    chain = _chain(spec, registry)
    registry.sync(_spec().model_copy(update={"providers": []}), 0.0)  # a and b are gone
    assert chain.next(0.0) == Try(spec.providers[0], 0.0), "the request finishes its config"
    assert chain.failed(spec.providers[0], 500, CIMultiDict(), 0.0, 0.0)


def test_a_5xx_with_retry_after_pauses_the_provider() -> None:
    limiter = Limiter(None, now=0.0)
    limiter.observe(503, CIMultiDict(), None, 0.0)
    assert limiter.reserve(1, 0.0, 0.0) == 0.0, "a bare 503 is the breaker's business"
    limiter.observe(503, CIMultiDict(), 30.0, 0.0)
    assert limiter.reserve(1, 10.0, max_wait=1.0) is None, "it asked everyone to wait 30 s"
