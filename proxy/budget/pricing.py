"""What a call costs: from its usage, and at worst, before it is made.

Prices come from `genai-prices` (an offline snapshot of the providers' published
rates, tiers included) unless the provider's config overrides the model with
`providers[].prices`. A model known to neither is an error that names it and says
how to fix it: pricing never silently answers zero.

Usage convention. `proxy.dialects.Usage` holds what the provider reported, with
``output_tokens`` meaning every generated token, reasoning included (the dialects
make it so: Gemini's thoughts are added to its candidates there). `_normalised`
turns it into genai-prices' terms, where ``input_tokens`` is *all* prompt tokens,
cache reads and writes included:

- openai and gemini: the prompt count already includes cached tokens.
- anthropic: ``input_tokens`` excludes cache reads and writes, so they are added.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices

from proxy.config import Provider, ProviderType
from proxy.config.model import ModelPrice
from proxy.dialects import Usage
from proxy.dialects.limits import OUTPUT_LIMITS

MILLION = Decimal(1_000_000)
#: genai-prices' provider id for each dialect. An azure-openai provider is priced as
#: OpenAI (`Provider.dialect_type`): Azure's global deployments charge OpenAI's prices,
#: and genai-prices' own 'azure' entry lists only a few models (no gpt-4o family).
_GENAI_PROVIDER: dict[ProviderType, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
}


class UnknownPrice(LookupError):
    """No price for a model: the call cannot be priced, so it must not run under a cap."""

    def __init__(self, provider: str, model: str) -> None:
        super().__init__(
            f"no price known for model '{model}' at provider '{provider}': "
            f"add providers[name={provider}].prices.{model} with inputPerMTok and "
            "outputPerMTok (USD per million tokens) to the config"
        )
        self.provider = provider
        self.model = model


class UnknownOutputLimit(UnknownPrice):
    """A request without max tokens, to a model whose longest answer is not known."""

    def __init__(self, provider: str, model: str) -> None:
        LookupError.__init__(
            self,
            f"the request sets no max tokens and the longest answer of model '{model}' at "
            f"provider '{provider}' is not known, so its worst-case cost cannot be reserved: "
            f"set providers[name={provider}].prices.{model}.maxOutputTokens in the config, "
            "or send a max tokens setting with the request",
        )
        self.provider = provider
        self.model = model


@dataclass(frozen=True, slots=True)
class Counts:
    """Token counts in genai-prices' terms (see the module docstring)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0


def _normalised(provider_type: ProviderType, usage: Usage) -> Counts:
    prompt = usage.input_tokens
    if provider_type == "anthropic":
        prompt += usage.cache_read_tokens + usage.cache_write_tokens
    return Counts(prompt, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)


def _override_cost(price: ModelPrice, counts: Counts) -> Decimal:
    cache_read = price.cache_read_per_mtok
    cache_write = price.cache_write_per_mtok
    read_rate = price.input_per_mtok if cache_read is None else cache_read
    write_rate = price.input_per_mtok * 2 if cache_write is None else cache_write
    writes = counts.cache_write_tokens  # 1-hour writes are a part of these, as in genai-prices
    uncached = max(counts.input_tokens - counts.cache_read_tokens - writes, 0)
    total = (
        uncached * price.input_per_mtok
        + counts.cache_read_tokens * read_rate
        + writes * write_rate
        + counts.output_tokens * price.output_per_mtok
    )
    return total / MILLION


@dataclass(frozen=True, slots=True)
class _FlatRates:
    """A model's per-million-token rates when none is tiered (most models)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None
    cache_write_1h: Decimal | None

    def cost(self, counts: Counts) -> Decimal | None:
        """The cost, or None when the counts need a rate this model does not list."""
        writes_1h = counts.cache_write_1h_tokens
        writes_5m = counts.cache_write_tokens - writes_1h
        if (
            (counts.cache_read_tokens and self.cache_read is None)
            or (writes_5m and self.cache_write is None)
            or (writes_1h and self.cache_write_1h is None)
        ):
            return None
        uncached = counts.input_tokens - counts.cache_read_tokens - counts.cache_write_tokens
        total = uncached * self.input + counts.output_tokens * self.output
        total += counts.cache_read_tokens * (self.cache_read or 0)
        total += writes_5m * (self.cache_write or 0) + writes_1h * (self.cache_write_1h or 0)
        return total / MILLION


#: Price fields our counts can never trigger (searches, audio tokens: `Counts` has
#: none): they don't stop the fast path. Any other field (a per-request fee) does.
_INERT_FIELDS = {"web_searches_kcount", "storage_searches_kcount", "input_audio_mtok",
                 "cache_audio_read_mtok", "output_audio_mtok"}  # fmt: skip
_FLAT_FIELDS = {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
                "cache_write_1h_mtok"}  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _flat_rates(provider_type: ProviderType, model: str, day: str) -> _FlatRates | None:
    """Cached flat rates of a model for a UTC day (prices can change by date), or None.

    genai-prices' `calc_price` takes ~0.15 ms per call -- half the sidecar's whole
    latency budget -- so flat-priced models are priced from these rates; tiered ones,
    and any with fields outside the known set, still go through `calc_price`.
    tests/test_pricing_fast_path.py checks both paths agree.
    """
    info = _genai_model(provider_type, model)
    if info is None:
        return None
    fields = {k: v for k, v in vars(info.get_prices(datetime.now(UTC))).items() if v is not None}  # type: ignore[attr-defined]
    if set(fields) - _FLAT_FIELDS - _INERT_FIELDS or not all(
        isinstance(fields.get(k, Decimal(0)), Decimal) for k in _FLAT_FIELDS
    ):
        return None
    if "input_mtok" not in fields or "output_mtok" not in fields:
        return None
    return _FlatRates(
        fields["input_mtok"],
        fields["output_mtok"],
        fields.get("cache_read_mtok"),
        fields.get("cache_write_mtok"),
        fields.get("cache_write_1h_mtok"),
    )


def _genai_cost(provider_type: ProviderType, model: str, counts: Counts) -> Decimal | None:
    rates = _flat_rates(provider_type, model, datetime.now(UTC).date().isoformat())
    cost = rates.cost(counts) if rates is not None else None
    return cost if cost is not None else _genai_calc(provider_type, model, counts)


@functools.lru_cache(maxsize=4096)
def _genai_calc(provider_type: ProviderType, model: str, counts: Counts) -> Decimal | None:
    usage = {k: v for k, v in _as_kwargs(counts).items() if v}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unsupported key is an error below, not a warning
            result = genai_prices.calc_price(
                genai_prices.Usage(**usage), model, provider_id=_GENAI_PROVIDER[provider_type]
            )
    except LookupError:
        return None
    total: Decimal = result.total_price
    return total


def _as_kwargs(counts: Counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in Counts.__slots__}


@functools.lru_cache(maxsize=1024)
def _genai_model(provider_type: ProviderType, model: str) -> object | None:
    snapshot = genai_prices.data_snapshot.get_snapshot()
    try:
        found = snapshot.find_provider_model(model, None, _GENAI_PROVIDER[provider_type], None)
    except LookupError:
        return None
    return found[1]


@functools.lru_cache(maxsize=1024)
def _cache_write_priced(provider_type: ProviderType, model: str) -> tuple[bool, bool]:
    """Whether genai-prices prices (5-minute, 1-hour) cache writes for a model.

    Only those variants can cost more than plain input, so only they are worth
    pricing for a worst case (each `calc_price` call costs ~0.1 ms).
    """
    info = _genai_model(provider_type, model)
    if info is None:
        return False, False
    prices = info.get_prices(datetime.now(UTC))  # type: ignore[attr-defined]
    return (
        getattr(prices, "cache_write_mtok", None) is not None,
        getattr(prices, "cache_write_1h_mtok", None) is not None,
    )


class PriceBook:
    """Prices for one config: per-provider overrides first, then genai-prices."""

    def __init__(self, providers: list[Provider]) -> None:
        self._overrides: Mapping[str, Mapping[str, ModelPrice]] = {
            p.name: p.prices for p in providers
        }

    def _override(self, provider: Provider, model: str) -> ModelPrice | None:
        return self._overrides.get(provider.name, {}).get(model)

    def _price(self, provider: Provider, model: str, counts: Counts) -> Decimal:
        override = self._override(provider, model)
        if override is not None:
            return _override_cost(override, counts)
        cost = _genai_cost(provider.dialect_type, model, counts)
        if cost is None:
            raise UnknownPrice(provider.name, model)
        return cost

    def cost(self, provider: Provider, model: str, usage: Usage) -> Decimal:
        """USD of one answer's usage, `model` as requested: priced as the model the provider
        ran for it (`Provider.models`). Raises `UnknownPrice`."""
        return self._price(
            provider, provider.model_for(model), _normalised(provider.dialect_type, usage)
        )

    def output_limit(self, provider: Provider, model: str, input_tokens: int) -> int:
        """The most output tokens the model the provider runs for a request naming `model`
        can produce: see `_output_limit`."""
        return self._output_limit(provider, provider.model_for(model), input_tokens)

    def _output_limit(self, provider: Provider, model: str, input_tokens: int) -> int:
        """The most output tokens a request without a max tokens setting can produce.

        The override's `maxOutputTokens`, else the family table `OUTPUT_LIMITS`, else
        the context window left after the input; raises `UnknownOutputLimit` when none is.
        """
        override = self._override(provider, model)
        if override is not None and override.max_output_tokens is not None:
            return override.max_output_tokens
        name = model.lower()
        listed = next((n for prefix, n in OUTPUT_LIMITS if name.startswith(prefix)), None)
        info = _genai_model(provider.dialect_type, model)
        window = getattr(info, "context_window", None)
        if isinstance(window, int):
            room = max(window - input_tokens, 1)
            return room if listed is None else min(listed, room)
        if listed is not None:
            return listed
        raise UnknownOutputLimit(provider.name, model)

    def worst_case(
        self, provider: Provider, model: str, input_tokens: int, max_tokens: int | None
    ) -> Decimal:
        """The most a request can cost: every input token at its dearest rate (plain,
        or written to a cache, 5-minute or 1-hour) and the longest answer allowed
        (`max_tokens`; None: the model's limit; 0: a call that generates nothing), at the
        model the provider runs for a request naming `model` (`Provider.models`)."""
        model = provider.model_for(model)
        output = (
            self._output_limit(provider, model, input_tokens) if max_tokens is None else max_tokens
        )
        n = input_tokens
        variants = [Counts(n, output)]
        writes, writes_1h = _cache_write_priced(provider.dialect_type, model)
        if writes or self._override(provider, model) is not None:
            variants.append(Counts(n, output, cache_write_tokens=n))
        if writes_1h:
            variants.append(Counts(n, output, cache_write_tokens=n, cache_write_1h_tokens=n))
        return max(self._price(provider, model, counts) for counts in variants)
