"""The attempt chain of one request, decided purely: what to do next, step by step.

The edge (`proxy.server.attempts`) asks `next()` and executes the step it gets:

- `Try(provider, wait)`: sleep `wait` seconds (backoff, or a rate-limit
  reservation), then call the provider;
- `UseMock()`: answer from the mock (the chain reached `mock` in `spec.fallback`);
- `GiveUp()`: nothing left -- relay the last failure (or, if no provider could
  even be tried, a 503 in the client's dialect).

and reports back: `failed(...)` for a retryable failure before anything was
relayed (returns whether another step exists -- if not, the caller relays that
failure as the answer), `done(...)` once an answer was relayed.

The chain is the routed provider, then -- only when `spec.fallback` is set -- the
providers `fallback` names after it -- of the same dialect, or of any dialect when
the request can be translated (`proxy.translate`) -- up to `mock` if it is named.
Per provider: up to `retry.maxAttempts` attempts, while its breaker lets requests through, its rate
limit has room within `maxWaitMs`, and `retry.deadlineMs` (counted from the
request's arrival) is not over. Every move away from a provider sets the reason
the answer reports in `x-llm-route-reason`: `fallback:<from>` or
`breaker-open:<provider>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxy.config import MOCK, LLMRolloutSpec, Provider
from proxy.resilience import retry
from proxy.resilience.registry import ProviderState, Registry


@dataclass(frozen=True, slots=True)
class Try:
    provider: Provider
    wait: float


@dataclass(frozen=True, slots=True)
class UseMock:
    pass


@dataclass(frozen=True, slots=True)
class GiveUp:
    pass


Step = Try | UseMock | GiveUp


def counts_as_failure(status: int | None) -> bool:
    """Whether an outcome says the provider is unhealthy (for its breaker).

    No answer, 408 and 5xx do; a client's own 4xx does not, nor 429 and 409 (quota
    and conflicts are not ill health; the rate limiter handles 429).
    """
    return status is None or status == 408 or status >= 500


def health(status: int | None) -> bool | None:
    """The breaker's verdict on an outcome: True healthy, False failing, None no verdict.

    A 429 is no verdict: the provider is up and refusing on quota. Counted as a
    success it would close a half-open breaker on a provider that has not shown it
    can answer; as a failure it would open the breaker on a quota wall.
    """
    return None if status == 429 else not counts_as_failure(status)


def fallback_chain(
    spec: LLMRolloutSpec, first: Provider, *, cross: bool = False
) -> list[Provider | None]:
    """`first`, then the enabled providers and `mock` (as None) `fallback` names: of
    `first`'s dialect only, or of any dialect when the request can be translated (`cross`)."""
    entries: list[Provider | None] = [first]
    for name in spec.fallback:
        if name == MOCK:
            entries.append(None)
            break  # the mock always answers: nothing after it is reached
        provider = spec.provider(name)
        if (
            provider is not None
            and provider.enabled
            and (cross or provider.dialect_type == first.dialect_type)
            and provider.name != first.name
        ):
            entries.append(provider)
    return entries


class Chain:
    def __init__(
        self,
        spec: LLMRolloutSpec,
        first: Provider,
        registry: Registry,
        *,
        started: float,
        tokens: int,
        draw: Callable[[], float],
        cross: bool = False,
    ) -> None:
        self.spec = spec
        self.policy = spec.retry
        self.entries = fallback_chain(spec, first, cross=cross)
        self.registry = registry
        self.deadline = started + spec.retry.deadline_ms / 1000
        self.tokens = tokens
        self.draw = draw
        self.attempts: dict[str, int] = {}
        self.reason: str | None = None  # None: the routing decision's own reason stands
        self._index = 0
        self._pending: float | None = None  # wait before retrying the current provider

    @property
    def retried(self) -> bool:
        """Whether the sidecar made more than one attempt (then the SDK must not add more)."""
        return sum(self.attempts.values()) > 1

    def next(self, now: float) -> Step:
        while self._index < len(self.entries):
            provider = self.entries[self._index]
            if provider is None:
                return UseMock()
            state = self._state(provider, now)
            wait = self._pending or 0.0
            room = self.deadline - now - wait
            if room <= 0:
                self._move_on(f"fallback:{provider.name}", to_mock=True)
                continue
            if not state.breaker.would_allow(now):
                first_visit = provider.name not in self.attempts
                self._move_on(("breaker-open:" if first_visit else "fallback:") + provider.name)
                continue
            max_wait = min(state.limiter.limit.max_wait_ms / 1000, room)
            reserved = state.limiter.reserve(
                self.tokens, now + wait, max_wait, self.policy.max_backoff_ms / 1000
            )
            if reserved is None:
                self._move_on(f"fallback:{provider.name}")
                continue
            state.breaker.allow(now)
            self.attempts[provider.name] = self.attempts.get(provider.name, 0) + 1
            self._pending = None
            return Try(provider, wait + reserved)
        return GiveUp()

    def failed(
        self,
        provider: Provider,
        status: int | None,
        headers: Mapping[str, str],
        now: float,
        wall_now: float,
    ) -> bool:
        """A retryable failure before anything was relayed; True if another step exists."""
        state = self._state(provider, now)
        asked = retry.retry_after(headers, wall_now)
        state.limiter.observe(status, headers, asked, now, wall_now)
        state.breaker.record(health(status), now)
        made = self.attempts[provider.name]
        if made < self.policy.max_attempts and state.breaker.would_allow(now):
            wait = retry.delay(made, self.policy, self.draw(), asked)
            if wait is not None and now + wait < self.deadline:
                self._pending = wait
                return True
        self._move_on(f"fallback:{provider.name}")
        return self._index < len(self.entries)

    def abandon(self, provider: Provider) -> None:
        """The request went away mid-attempt: no verdict on the provider."""
        self._state(provider, 0.0).breaker.cancel()

    def skip(self, provider: Provider) -> bool:
        """The provider cannot be called at all (no key); True if another step exists."""
        self.attempts[provider.name] -= 1
        self._state(provider, 0.0).breaker.cancel()
        self._move_on(f"fallback:{provider.name}")
        return self._index < len(self.entries)

    def done(
        self,
        provider: Provider,
        status: int,
        headers: Mapping[str, str],
        ok: bool,
        used_tokens: int,
        now: float,
        wall_now: float,
    ) -> None:
        """An answer was relayed; `ok` is False when its stream died mid-way."""
        state = self._state(provider, now)
        state.limiter.observe(status, headers, retry.retry_after(headers, wall_now), now, wall_now)
        state.limiter.settle(self.tokens, used_tokens, now)
        state.breaker.record(health(status) if ok else False, now)

    def _state(self, provider: Provider, now: float) -> ProviderState:
        return self.registry.state_for(provider, self.spec, now)

    def _move_on(self, reason: str, *, to_mock: bool = False) -> None:
        self.reason = reason
        self._pending = None
        self._index += 1
        if to_mock:  # out of time: only the mock is left, if the chain has it
            self._index = self.entries.index(None) if None in self.entries else len(self.entries)
