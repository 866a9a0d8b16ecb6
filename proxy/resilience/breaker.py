"""A circuit breaker per provider: stop sending to a provider that is failing.

Closed: requests flow; outcomes are counted in one-second buckets over a rolling
window of `windowSeconds`. When the window holds at least `minRequests` outcomes
and the failed share reaches `failureRatio`, the breaker opens. Open: the provider
is skipped without a call for `openSeconds`. Then half-open: up to
`halfOpenProbes` requests are let through; all of them succeeding closes the
breaker (with a fresh window), any failure re-opens it for another `openSeconds`.

What is a failure is the caller's call (see `chain.health`): 5xx, 408, timeouts,
refused connections and streams that die mid-way; not a client's own 4xx. A 429
is no verdict at all (quota is the rate limiter's business, not the provider's
health): it is not counted, and a half-open probe answered 429 frees its slot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum

from proxy.config.model import CircuitBreaker


class State(IntEnum):
    """Values are those of the `llm_rollout_breaker_state` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


#: Called as (provider, new state) on every transition.
OnTransition = Callable[[str, State], None]


class Breaker:
    def __init__(
        self, provider: str, policy: CircuitBreaker, on_transition: OnTransition | None = None
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._on_transition = on_transition
        self._state = State.CLOSED
        self._buckets: deque[list[int]] = deque()  # [second, successes, failures]
        self._opened_at = 0.0
        self._half_open_at = 0.0
        self._probes_started = 0
        self._probes_ok = 0
        self.opened_count = 0

    def state(self, now: float) -> State:
        """The state at `now` (an open breaker turns half-open once `openSeconds` passed)."""
        if self._state is State.OPEN and now - self._opened_at >= self.policy.open_seconds:
            self._move(State.HALF_OPEN)
            self._half_open_at = now
            self._probes_started = self._probes_ok = 0
        elif (
            self._state is State.HALF_OPEN
            and now - self._half_open_at >= self.policy.open_seconds
            and self._probes_started > self._probes_ok
        ):  # probes with no verdict for a whole openSeconds: let a new round through
            self._half_open_at = now
            self._probes_started = self._probes_ok
        return self._state

    def probe_now(self, now: float) -> None:
        """An open breaker lets probes through at once (the operator says the provider may
        be back: a `retry` after an outage); closed and half-open ones are left as they are."""
        if self.state(now) is State.OPEN:
            self._opened_at = now - self.policy.open_seconds
            self.state(now)

    def reopens_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state(now) is not State.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.policy.open_seconds - now)

    def would_allow(self, now: float) -> bool:
        """Whether `allow` would say yes, without taking a half-open probe slot."""
        state = self.state(now)
        return state is State.CLOSED or (
            state is State.HALF_OPEN and self._probes_started < self.policy.half_open_probes
        )

    def allow(self, now: float) -> bool:
        """Whether one request may be sent now; a half-open breaker counts it as a probe."""
        state = self.state(now)
        if state is State.CLOSED:
            return True
        if state is State.OPEN or self._probes_started >= self.policy.half_open_probes:
            return False
        self._probes_started += 1
        return True

    def cancel(self) -> None:
        """A request `allow` let through was not sent after all: give back its probe slot."""
        if self._state is State.HALF_OPEN and self._probes_started > 0:
            self._probes_started -= 1

    def record(self, ok: bool | None, now: float) -> None:
        """The outcome of a request that `allow` let through (None: no verdict on health,
        e.g. a 429: a half-open breaker stays half-open and the probe slot is freed)."""
        state = self.state(now)
        if ok is None:
            if state is State.HALF_OPEN:
                self.cancel()
            return
        if state is State.HALF_OPEN:
            if not ok:
                self._open(now)
            else:
                self._probes_ok += 1
                if self._probes_ok >= self.policy.half_open_probes:
                    self._buckets.clear()
                    self._move(State.CLOSED)
            return
        if state is State.OPEN:
            return  # a straggler from before the breaker opened: already judged
        self._count(ok, now)
        if ok:
            return  # a success never opens the breaker
        successes, failures = self.window(now)
        total = successes + failures
        if total >= self.policy.min_requests and failures >= self.policy.failure_ratio * total:
            self._open(now)

    def window(self, now: float) -> tuple[int, int]:
        """(successes, failures) in the rolling window ending at `now`."""
        self._expire(now)
        return sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets)

    def _count(self, ok: bool, now: float) -> None:
        second = int(now)
        self._expire(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        self._buckets[-1][1 if ok else 2] += 1

    def _expire(self, now: float) -> None:
        oldest = int(now) - self.policy.window_seconds
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()

    def _open(self, now: float) -> None:
        self._opened_at = now
        self.opened_count += 1
        self._buckets.clear()
        self._move(State.OPEN)

    def _move(self, state: State) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_transition is not None:
            self._on_transition(self.provider, state)
