"""The cached flat-rate path prices exactly as genai-prices' own calc_price does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.budget.pricing import Counts, _flat_rates, _genai_calc

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1-mini"),
    ("anthropic", "claude-sonnet-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-5"),
    ("gemini", "gemini-2.0-flash"),
]


TODAY = datetime.now(UTC).date().isoformat()


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_common_models_take_the_fast_path(provider: str, model: str) -> None:
    assert _flat_rates(provider, model, TODAY) is not None  # type: ignore[arg-type]


def test_tiered_models_go_through_calc_price() -> None:
    assert _flat_rates("gemini", "gemini-2.5-pro", TODAY) is None
    big = Counts(300_000, 10)  # past the 200k tier: the dearer rate applies
    small = Counts(100_000, 10)
    assert _genai_calc("gemini", "gemini-2.5-pro", big) > 3 * _genai_calc(  # type: ignore[operator]
        "gemini", "gemini-2.5-pro", small
    )


@pytest.mark.parametrize(("provider", "model"), MODELS)
@settings(max_examples=40, deadline=None)
@given(
    prompt=st.integers(0, 300_000),
    output=st.integers(0, 100_000),
    read=st.integers(0, 100_000),
    write=st.integers(0, 100_000),
    write_1h=st.integers(0, 100_000),
)
def test_fast_path_equals_calc_price(
    provider: str, model: str, prompt: int, output: int, read: int, write: int, write_1h: int
) -> None:
    write_1h = min(write_1h, write)
    counts = Counts(prompt + read + write, output, read, write, write_1h)
    rates = _flat_rates(provider, model, TODAY)  # type: ignore[arg-type]
    assert rates is not None
    fast = rates.cost(counts)
    if fast is None:
        return  # a rate the model lacks: the slow path decides
    assert fast == _genai_calc(provider, model, counts)  # type: ignore[arg-type]
