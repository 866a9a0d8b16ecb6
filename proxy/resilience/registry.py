"""The resilience state of one sidecar: a breaker and a limiter per provider, tenant quotas.

It lives with the runtime, not with a config snapshot: a config reload keeps the
state of every provider whose definition (and the breaker policy) did not change,
so reloading an unrelated field never closes an open breaker or refills a bucket.
A new rate limit alone (the operator's share moving) resizes the buckets in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.config import LLMRolloutSpec, Provider
from proxy.resilience.breaker import Breaker, OnTransition, State
from proxy.resilience.ratelimit import Limiter
from proxy.resilience.tenants import TenantQuotas


@dataclass(slots=True)
class ProviderState:
    provider: Provider
    breaker: Breaker
    limiter: Limiter


class Registry:
    def __init__(self, on_transition: OnTransition | None = None) -> None:
        self._on_transition = on_transition
        self._providers: dict[str, ProviderState] = {}
        self.tenants = TenantQuotas()

    def sync(self, spec: LLMRolloutSpec, now: float) -> None:
        """Match the providers of a (new) config; unchanged ones keep their state."""
        kept: dict[str, ProviderState] = {}
        for provider in spec.providers:
            old = self._providers.get(provider.name)
            if (
                old is not None
                and _sans_limit(old.provider) == _sans_limit(provider)
                and old.breaker.policy == spec.circuit_breaker
            ):
                if old.provider.rate_limit != provider.rate_limit:
                    # Only the limit moved (the operator's share changes as sidecars come
                    # and go): resize the buckets; the breaker's verdict still stands.
                    old.limiter.resize(provider.rate_limit, now)
                    old.provider = provider
                kept[provider.name] = old
                continue
            breaker = Breaker(provider.name, spec.circuit_breaker, self._on_transition)
            kept[provider.name] = ProviderState(
                provider, breaker, Limiter(provider.rate_limit, now)
            )
        self._providers = kept

    def get(self, name: str) -> ProviderState:
        return self._providers[name]

    def state_for(self, provider: Provider, spec: LLMRolloutSpec, now: float) -> ProviderState:
        """The provider's state; a request still on a config that a reload replaced
        gets a throwaway state for a provider the new config no longer has."""
        state = self._providers.get(provider.name)
        if state is not None:
            return state
        return ProviderState(
            provider,
            Breaker(provider.name, spec.circuit_breaker),
            Limiter(provider.rate_limit, now),
        )

    def probe_open(self, now: float) -> list[str]:
        """Half-open every open breaker now; the providers whose breakers moved."""
        moved = []
        for name, state in self._providers.items():
            if state.breaker.state(now) is State.OPEN:
                state.breaker.probe_now(now)
                moved.append(name)
        return moved

    def states(self, now: float) -> dict[str, State]:
        return {name: s.breaker.state(now) for name, s in self._providers.items()}

    def status(self, now: float) -> list[dict[str, Any]]:
        """Every provider's state, for `/config` and `/health/llm`."""
        rows = []
        for name, state in self._providers.items():
            breaker, limiter = state.breaker, state.limiter
            successes, failures = breaker.window(now)
            rows.append(
                {
                    "name": name,
                    "type": state.provider.type,
                    "breaker": breaker.state(now).label,
                    "enabled": state.provider.enabled,
                    "usable": state.provider.enabled
                    and breaker.would_allow(now)
                    and limiter.paused_until <= now,
                    "reopensInSeconds": round(breaker.reopens_in(now), 3),
                    "window": {"successes": successes, "failures": failures},
                    "timesOpened": breaker.opened_count,
                    "rateLimitedUntilSeconds": round(max(0.0, limiter.paused_until - now), 3),
                    "rateLimitRefusals": limiter.refused,
                }
            )
        return rows


def _sans_limit(provider: Provider) -> Provider:
    return provider.model_copy(update={"rate_limit": None})
