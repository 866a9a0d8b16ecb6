"""What each mock answer would have cost on the real provider: the shadow cost.

Priced from the mock's own token counts (exact for OpenAI models, estimated for
others, see `proxy.tokens`) with the budget's price book, so the cost of going
real is on a dashboard before the first real request is sent.
"""

from __future__ import annotations

from proxy.budget.pricing import UnknownPrice
from proxy.config import Provider
from proxy.dialects import Dialect, Usage
from proxy.server.runtime import Runtime

#: The official API of each provider type: the price a config without that provider would pay.
_OFFICIAL = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


def record_shadow_cost(runtime: Runtime, dialect: Dialect, model: str, usage: Usage) -> None:
    """Add the answer's would-be cost to `llm_rollout_mock_shadow_cost_usd_total`.

    The configured provider of the dialect's type is priced (its `prices` overrides
    apply); without one, the provider's public list price. An unpriced model is
    skipped: the real call would be refused or counted under `unpriced` anyway.
    """
    if not (usage.input_tokens or usage.output_tokens):
        return
    spec = runtime.snapshot.spec
    provider = next((p for p in spec.providers if p.dialect_type == dialect.provider_type), None)
    if provider is None:
        provider = Provider.model_validate(
            {"name": dialect.provider_type, "type": dialect.provider_type,
             "baseURL": _OFFICIAL[dialect.provider_type]}
        )  # fmt: skip
    try:
        cost = runtime.budget.prices.cost(provider, model, usage)
    except UnknownPrice:
        return
    runtime.metrics.mock_shadow_cost.labels(provider.name, model).inc(float(cost))
