"""Cost from usage and worst case before the call: genai-prices, overrides, unknown models."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proxy.budget import PriceBook, UnknownPrice
from proxy.budget.pricing import UnknownOutputLimit
from proxy.config import parse_spec
from proxy.dialects import Usage


def book(**prices: object) -> tuple[PriceBook, dict[str, object]]:
    spec = parse_spec({"providers": [
        {"name": "oai", "type": "openai", "baseURL": "https://api.openai.com/v1"},
        {"name": "ant", "type": "anthropic", "baseURL": "https://api.anthropic.com",
         "prices": prices},
        {"name": "gem", "type": "gemini", "baseURL": "https://generativelanguage.googleapis.com"},
    ]})  # fmt: skip
    return PriceBook(spec.providers), {p.name: p for p in spec.providers}


def test_gpt_4o_mini_costs_its_published_price() -> None:
    prices, providers = book()
    # OpenAI's published gpt-4o-mini rates: $0.15 input, $0.075 cached input, $0.60 output
    # per million tokens. prompt_tokens includes the cached ones.
    usage = Usage(input_tokens=1_000, cache_read_tokens=500, output_tokens=10)
    expected = (500 * Decimal("0.15") + 500 * Decimal("0.075") + 10 * Decimal("0.60")) / 10**6
    assert prices.cost(providers["oai"], "gpt-4o-mini", usage) == expected == Decimal("0.0001185")
    dated = prices.cost(providers["oai"], "gpt-4o-mini-2024-07-18", usage)
    assert dated == expected, "a dated snapshot is priced as its model"


def test_anthropic_cache_tokens_are_added_to_input_as_anthropic_reports_them_apart() -> None:
    prices, providers = book()
    plain = prices.cost(providers["ant"], "claude-sonnet-5", Usage(input_tokens=100))
    cached = prices.cost(
        providers["ant"], "claude-sonnet-5",
        Usage(input_tokens=100, cache_read_tokens=1_000, cache_write_tokens=1_000),
    )  # fmt: skip
    # claude-sonnet-5: $2 input, $0.20 cache read, $2.50 cache write per MTok.
    assert plain == Decimal("0.0002")
    assert cached == Decimal("0.0002") + Decimal("0.0002") + Decimal("0.0025")


def test_reasoning_tokens_are_inside_output_and_not_billed_twice() -> None:
    prices, providers = book()
    # Every dialect reports output with reasoning included (Gemini's thoughts are added
    # to its candidates by the dialect), so reasoning_tokens is informative only.
    for name, model in (("gem", "gemini-2.5-flash"), ("oai", "o3-mini")):
        plain = prices.cost(providers[name], model, Usage(output_tokens=200))
        thinking = prices.cost(
            providers[name], model, Usage(output_tokens=200, reasoning_tokens=100)
        )
        assert thinking == plain > 0


def test_an_embedding_call_reserves_no_output() -> None:
    prices, providers = book()
    worst = prices.worst_case(providers["oai"], "text-embedding-3-small", 1_000, 0)
    assert worst == prices.cost(
        providers["oai"], "text-embedding-3-small", Usage(input_tokens=1_000)
    )


def test_an_override_takes_precedence_and_unset_cache_prices_are_priced_high() -> None:
    prices, providers = book(**{
        "my-fine-tune": {"inputPerMTok": "1", "outputPerMTok": "4", "maxOutputTokens": 100},
        "claude-sonnet-5": {"inputPerMTok": "1", "outputPerMTok": "1"},
    })  # fmt: skip
    ant = providers["ant"]
    assert prices.cost(ant, "claude-sonnet-5", Usage(input_tokens=10**6)) == Decimal(1)
    usage = Usage(input_tokens=0, cache_read_tokens=10**6, cache_write_tokens=10**6,
                  output_tokens=10**6)  # fmt: skip
    # cache read at the input price (1), cache write at twice it (2), output 4
    assert prices.cost(ant, "my-fine-tune", usage) == Decimal(7)
    assert prices.worst_case(ant, "my-fine-tune", 0, None) == 100 * Decimal(4) / 10**6


def test_an_unknown_model_is_an_error_naming_it_and_the_fix_never_free() -> None:
    prices, providers = book()
    with pytest.raises(UnknownPrice) as caught:
        prices.cost(providers["oai"], "my-secret-model", Usage(input_tokens=1))
    message = str(caught.value)
    assert "my-secret-model" in message
    assert "'oai'" in message
    assert "prices" in message
    assert "inputPerMTok" in message
    with pytest.raises(UnknownPrice):
        prices.worst_case(providers["oai"], "my-secret-model", 10, 10)
    prices, providers = book(**{"my-tune": {"inputPerMTok": "1", "outputPerMTok": "4"}})
    with pytest.raises(UnknownOutputLimit, match="maxOutputTokens"):
        prices.worst_case(providers["ant"], "my-tune", 10, None)


def test_worst_case_uses_max_tokens_or_the_model_output_limit() -> None:
    prices, providers = book()
    oai = providers["oai"]
    with_max = prices.worst_case(oai, "gpt-4o-mini", 1_000, 100)
    assert with_max == (1_000 * Decimal("0.15") + 100 * Decimal("0.60")) / 10**6
    without = prices.worst_case(oai, "gpt-4o-mini", 1_000, None)
    assert without == (1_000 * Decimal("0.15") + 16_384 * Decimal("0.60")) / 10**6
    # a model without a listed output limit: its context window less the input
    gpt4 = prices.worst_case(oai, "gpt-4", 1_000, None)
    assert gpt4 > prices.cost(oai, "gpt-4", Usage(input_tokens=1_000, output_tokens=7_000))


def test_worst_case_prices_input_at_its_dearest_rate_cache_writes_included() -> None:
    prices, providers = book()
    ant = providers["ant"]
    worst = prices.worst_case(ant, "claude-sonnet-5", 1_000, 10)
    for usage in (
        Usage(input_tokens=1_000, output_tokens=10),
        Usage(input_tokens=0, cache_write_tokens=1_000, output_tokens=10),
        Usage(input_tokens=500, cache_read_tokens=500, output_tokens=10),
    ):
        assert prices.cost(ant, "claude-sonnet-5", usage) <= worst
