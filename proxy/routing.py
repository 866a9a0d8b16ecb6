"""Real or mock, and which provider: the routing decision, as a pure function.

Stickiness: a sticky key is hashed to a fixed bucket in [0, 10000). A request is
real when its bucket is below ``realWeight * 100``. Among providers
(``traffic.providers``), the key is hashed again with a salt, so which provider a
user gets does not depend on how early they became real, and stays the same while
the weights do. Because the bucket never
changes and the threshold only moves up as the weight grows, raising the weight
only moves keys from mock to real, never back -- a user on real at 25% stays on
real at 50%. Without a sticky key each request draws its own number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from proxy.config import MOCK, LLMRolloutSpec, Provider, ProviderType

BUCKETS = 10_000

Reason = Literal["weight", "sticky", "force-mock", "no-provider", "budget"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one request goes and why (the why is echoed in `x-llm-route-reason`)."""

    provider: Provider | None  # None: the mock
    reason: Reason

    @property
    def backend(self) -> str:
        return self.provider.name if self.provider else MOCK


def bucket(sticky_value: str) -> int:
    """The fixed bucket of a sticky key; stable across processes and restarts."""
    digest = hashlib.blake2b(sticky_value.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def candidates(
    spec: LLMRolloutSpec, provider_type: ProviderType, *, cross: bool = False
) -> list[Provider]:
    """Providers that can serve a dialect, in preference order.

    `fallback` gives the order; providers it does not name come after, in the
    order they are declared; disabled ones (`enabled: false`) never. Providers of the
    dialect's own type come first (they
    serve it bytes-through); when the request can be translated (`cross`), the
    others follow, so an SDK whose own provider is not configured is still served.
    """
    ordered = [p for n in spec.fallback if n != MOCK and (p := spec.provider(n)) is not None]
    ordered += [p for p in spec.providers if p not in ordered]
    ordered = [p for p in ordered if p.enabled]
    own = [p for p in ordered if p.dialect_type == provider_type]
    return own + [p for p in ordered if p.dialect_type != provider_type] if cross else own


def decide(
    spec: LLMRolloutSpec,
    provider_type: ProviderType,
    *,
    sticky_value: str | None,
    draw: float,
    force_mock: bool = False,
    cross: bool = False,
) -> Decision:
    """Route one request.

    `draw` is a uniform number in [0, 1) supplied by the caller (so tests are
    deterministic); it is used only when the request has no sticky key. `cross`: the
    request can be translated for a provider of another dialect (`candidates`).
    """
    if force_mock or spec.force_mock:
        return Decision(None, "force-mock")
    threshold = spec.traffic.real_weight * (BUCKETS // 100)
    if sticky_value is not None and spec.traffic.sticky_key is not None:
        real, reason = bucket(sticky_value) < threshold, "sticky"
    else:
        real, reason = int(draw * BUCKETS) < threshold, "weight"
    if not real:
        return Decision(None, reason)  # type: ignore[arg-type]
    providers = candidates(spec, provider_type, cross=cross)
    if not providers:
        return Decision(None, "no-provider")
    weights = spec.traffic.providers
    if weights:
        # Among the real requests, a point in [0, 1): the sticky key's own (salted, so
        # it does not follow the real/mock bucket), else the draw rescaled.
        point = (
            bucket(f"{sticky_value}\x00provider") / BUCKETS if reason == "sticky"
            else (int(draw * BUCKETS) / threshold if threshold else 0.0)
        )  # fmt: skip
        return Decision(split(providers, weights, point), reason)  # type: ignore[arg-type]
    return Decision(providers[0], reason)  # type: ignore[arg-type]


def split(providers: list[Provider], weights: Mapping[str, int], point: float) -> Provider:
    """The provider `point` (uniform in [0, 1)) lands on in `traffic.providers`'s split.

    Only providers that can serve the request take part (`providers`, in preference
    order); when none of them is weighted, the first of them serves.
    """
    weighted = [(p, weights.get(p.name, 0)) for p in providers]
    total = sum(w for _, w in weighted)
    if total == 0:
        return providers[0]
    mark = point * total
    for provider, weight in weighted:
        if mark < weight:
            return provider
        mark -= weight
    return next(p for p, w in reversed(weighted) if w)


def shadow_target(
    spec: LLMRolloutSpec, provider_type: ProviderType, decision: Decision, draw: float
) -> Provider | None:
    """The provider a mock-routed request is also copied to (`traffic.shadow`), or None.

    Only requests the *weight* sent to the mock (reason weight or sticky) are copied,
    `percent` of them by `draw` (uniform in [0, 1), the caller's): the kill switch
    (force-mock) means nothing real at all; a request the budget sent to the mock
    was already refused a real call; a request routed real is not mock-routed. The
    copy goes where the request would have gone: the dialect's first candidate.
    """
    shadow = spec.traffic.shadow
    if shadow is None or decision.provider is not None or decision.reason not in _WEIGHTED:
        return None
    if int(draw * BUCKETS) >= shadow.percent * (BUCKETS // 100):
        return None
    providers = candidates(spec, provider_type)
    return providers[0] if providers else None


#: The reasons of a request the weight (not a switch or a refusal) sent to the mock.
_WEIGHTED: frozenset[Reason] = frozenset({"weight", "sticky"})
