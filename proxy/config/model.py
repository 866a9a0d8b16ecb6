"""The `LLMRollout` spec as typed, validated objects.

This module is the one contract between the sidecar and the operator: the
sidecar's standalone config file, the operator's CRD schema and the control
channel's payload are all this model. It is pure (pydantic only) so that the
operator can import it without pulling in aiohttp.

Field names are the Kubernetes ones (camelCase) on the wire and snake_case in
Python; every model forbids unknown fields so that a typo in a config file is an
error that names the field, not a setting silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

#: The API families (dialects) a provider can speak.
ProviderType = Literal["openai", "anthropic", "gemini"]
#: What `providers[].type` may say: a dialect, or a hosting of one with its own
#: paths and credentials (Azure OpenAI speaks OpenAI chat under deployment paths).
ProviderKind = Literal["openai", "anthropic", "gemini", "azure-openai"]

#: The one name in `fallback` that is not a provider.
MOCK = "mock"

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in a Kubernetes-style duration such as ``30s``, ``10m``, ``1h30m``."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like '30s', '10m' or '1h'")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


class Model(BaseModel):
    """Base: camelCase aliases, unknown fields rejected, immutable once loaded."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


#: A duration string; the pattern is for the CRD schema, the validator for the message.
Duration = Annotated[
    str, AfterValidator(_check_duration), Field(json_schema_extra={"pattern": _DURATION.pattern})
]
Percent = Annotated[int, Field(ge=0, le=100)]
USD = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]


class SecretRef(Model):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class ApiKey(Model):
    """Where a provider's key comes from: exactly one of the three sources.

    `secretRef` is what the operator uses in a cluster (it mounts the Secret as a
    file into the sidecar); `env` and `file` are for standalone mode.
    """

    env: str | None = None
    file: str | None = None
    secret_ref: SecretRef | None = None
    format: Literal["provider", "any"] = Field(
        default="provider",
        description="provider: the key must look like its provider type's keys (checked at "
        "load); any: only emptiness and whitespace are checked (OpenAI-compatible servers)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ApiKey:
        given = [n for n in ("env", "file", "secret_ref") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of env, file or secretRef")
        return self


class RateLimit(Model):
    """A provider's cluster-wide limits; each sidecar enforces its share (standalone: all)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    max_wait_ms: int = Field(
        default=1000, ge=0, description="longest a request waits for quota before falling back"
    )


class Timeouts(Model):
    connect_ms: int = Field(default=2000, ge=1)
    first_byte_ms: int = Field(default=30000, ge=1)
    total_ms: int = Field(default=120000, ge=1)


class ModelPrice(Model):
    """A price override for one model at one provider, in USD per million tokens.

    For models genai-prices does not know (fine-tunes, new releases) or negotiated
    rates. Unset cache prices are priced high on purpose: a cache read at the input
    price, a cache write at twice it (the highest multiplier a provider charges), so
    a missing figure can only over-count spend, never under-count it.
    """

    input_per_mtok: USD = Field(alias="inputPerMTok")
    output_per_mtok: USD = Field(alias="outputPerMTok")
    cache_read_per_mtok: USD | None = Field(default=None, alias="cacheReadPerMTok")
    cache_write_per_mtok: USD | None = Field(default=None, alias="cacheWritePerMTok")
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        alias="maxOutputTokens",
        description="longest answer the model gives; reserved when a request sets no max tokens",
    )


#: A model name as providers spell them (`claude-haiku-4-5`, `meta-llama/Llama-3-8B`,
#: `llama3:8b`).
ProviderModel = Annotated[
    str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")
]
_GEMINI_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Azure(Model):
    """How an `azure-openai` provider is addressed: Azure's deployment paths.

    Azure OpenAI serves ``/openai/deployments/{deployment}/chat/completions
    ?api-version=...`` and takes the key in an ``api-key`` header, or a Microsoft
    Entra access token as ``Authorization: Bearer`` (credential ``entra-token``:
    the provider's key source then holds the token, a file re-read as it rotates).
    """

    api_version: str = Field(
        default="2024-10-21",
        pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$",
        description="the api-version query parameter Azure requires on every call",
    )
    credential: Literal["api-key", "entra-token"] = Field(
        default="api-key",
        description="api-key: the key goes in the api-key header; entra-token: the key "
        "source holds a Microsoft Entra access token, sent as Authorization: Bearer",
    )
    deployments: dict[str, ProviderModel] = Field(
        default={},
        max_length=256,
        description="model -> Azure deployment name, with 'default' for any other; an "
        "unmapped model is a deployment of the same name. Prices follow the model",
    )

    def deployment_for(self, model: str) -> str:
        """The deployment that serves `model` (see `deployments`)."""
        return self.deployments.get(model) or self.deployments.get("default") or model


class Provider(Model):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    type: ProviderKind
    base_url: str = Field(alias="baseURL", pattern=r"^https?://")
    api_key: ApiKey | None = None
    api_keys: list[ApiKey] = Field(
        default=[],
        max_length=16,
        description="a pool of keys instead of apiKey: requests spread over the healthy ones; "
        "a key answered 401/403 is skipped, one answered 429 rests (rotation: add, then remove)",
    )
    rate_limit: RateLimit | None = None
    timeouts: Timeouts = Timeouts()
    #: model name (as this provider calls it, after `models`) -> price; takes precedence
    #: over genai-prices.
    prices: dict[str, ModelPrice] = {}
    enabled: bool = Field(
        default=True,
        description="false takes the provider out of routing, fallback and budget holds at "
        "once (a provider-outage switch); its config and keys stay",
    )
    models: dict[str, ProviderModel] = Field(
        default={},
        max_length=256,
        description="requested model -> the model this provider runs for it, with 'default' "
        "for any other (e.g. gpt-4o-mini: claude-haiku-4-5): how a provider serves requests "
        "named for another provider's models (fallback, provider weights); unmapped names "
        "pass as they are",
    )

    azure: Azure | None = Field(
        default=None,
        description="Azure OpenAI addressing (type azure-openai only; defaults apply when unset)",
    )

    @model_validator(mode="after")
    def _azure_only_for_azure(self) -> Provider:
        if self.azure is not None and self.type != "azure-openai":
            raise ValueError("azure: is for providers of type azure-openai only")
        return self

    @property
    def dialect_type(self) -> ProviderType:
        """The API family this provider speaks (Azure OpenAI speaks OpenAI's)."""
        return "openai" if self.type == "azure-openai" else self.type

    @property
    def azure_settings(self) -> Azure | None:
        """Azure addressing for an `azure-openai` provider (defaults when unset), else None."""
        if self.type != "azure-openai":
            return None
        return self.azure or Azure()

    @model_validator(mode="after")
    def _one_key_field(self) -> Provider:
        if self.api_key is not None and self.api_keys:
            raise ValueError("set apiKey or apiKeys, not both")
        return self

    @model_validator(mode="after")
    def _gemini_models_fit_a_path(self) -> Provider:
        for requested, model in self.models.items():
            if self.type == "gemini" and not _GEMINI_MODEL.fullmatch(model):
                raise ValueError(
                    f"models.{requested}: {model!r} is not a Gemini model name (it goes in "
                    "the URL path: letters, digits, '.', '-', '_' only)"
                )
        return self

    def model_for(self, requested: str) -> str:
        """The model this provider runs for a request naming `requested` (see `models`)."""
        return self.models.get(requested) or self.models.get("default") or requested

    @property
    def key_sources(self) -> list[ApiKey]:
        """Every key the provider may be called with (apiKeys, or the one apiKey)."""
        return self.api_keys or ([self.api_key] if self.api_key is not None else [])

    @field_validator("name")
    @classmethod
    def _not_mock(cls, value: str) -> str:
        if value == MOCK:
            raise ValueError("'mock' is reserved for the mock backend")
        return value


class LatencyPercentiles(Model):
    p50: int = Field(default=0, ge=0)
    p95: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LatencyPercentiles:
        if self.p95 < self.p50:
            raise ValueError("p95 must be >= p50")
        return self


class MockLatency(Model):
    first_token_ms: LatencyPercentiles = LatencyPercentiles()
    tokens_per_second: float = Field(default=0, ge=0, description="0 streams as fast as possible")


class MockFaultKinds(Model):
    """Relative weights of the injected faults (any non-negative numbers)."""

    rate_limit: float = Field(default=0.0, ge=0.0, description="429 with retry-after")
    server_error: float = Field(default=0.0, ge=0.0, description="500")
    unavailable: float = Field(default=0.0, ge=0.0, description="503")
    overloaded: float = Field(default=0.0, ge=0.0, description="Anthropic 529; 503 elsewhere")
    timeout: float = Field(default=0.0, ge=0.0, description="a long wait, then 504")
    stream_cut: float = Field(default=0.0, ge=0.0, description="stream ends with an error event")


class MockErrors(Model):
    """Fault injection: `rate` of requests fail, the kind drawn by `kinds` weights.

    With no weight set, rateLimit, serverError, unavailable and overloaded are
    equally likely. A mock answering as the fallback of a failed real request never
    injects faults or latency: it is the availability of last resort.
    """

    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    kinds: MockFaultKinds = MockFaultKinds()
    retry_after_seconds: int = Field(default=1, ge=0, le=3600)
    timeout_seconds: float = Field(default=30.0, ge=0.0, le=600.0)


class MockReplay(Model):
    """Answer from recorded cassettes (`replay`) or write them from real traffic (`record`)."""

    cassette: str = Field(min_length=1, description="path of the YAML cassette file")
    mode: Literal["replay", "record"] = "replay"
    #: What must agree for a recording to answer a request: method, path, model, body
    #: (the JSON equal) or bodySubset (every recorded field present and equal).
    match: list[Literal["method", "path", "model", "body", "bodySubset"]] = Field(
        default=["method", "path", "body"], min_length=1
    )
    #: A request no recording matches: the generated mock answers it, or a 404 error.
    on_miss: Literal["mock", "error"] = "mock"
    #: Play streams at the recorded pace, or as fast as possible.
    timing: Literal["recorded", "none"] = "recorded"


class MockSpec(Model):
    seed: int = 0
    latency: MockLatency = MockLatency()
    errors: MockErrors = MockErrors()
    replay: MockReplay | None = None
    #: estimate (default): the documented approximation for every model, no tables;
    #: exact: OpenAI models' usage from their real tokenizer (~125 MB of RSS once loaded,
    #: paid by every pod: opt in where exact mock usage matters).
    token_count: Literal["exact", "estimate"] = "estimate"


class StickyKey(Model):
    header: str = Field(min_length=1)


class Shadow(Model):
    """Copies of mock-routed requests sent to the real arm in the background.

    The client gets the mock's answer (bytes and timing); the copy's answer is
    scored, priced, charged to the budget and recorded as the real arm with a
    `shadow` label, then discarded. So quality is measured before any user sees
    a real answer.
    """

    percent: Percent = Field(default=0, description="share of mock-routed requests copied")
    max_concurrent: int = Field(
        default=8, ge=1, le=1024, description="copies in flight at once; more are skipped"
    )


class Traffic(Model):
    real_weight: Percent = Field(
        default=0,
        description="percent of requests sent to real providers when there is no strategy",
    )
    sticky_key: StickyKey | None = None
    shadow: Shadow | None = None
    providers: dict[str, int] = Field(
        default={},
        max_length=64,
        description="real traffic split between providers by relative weight, e.g. "
        "{openai-primary: 70, anthropic-backup: 30}; sticky like the real/mock split. A "
        "request goes to the weighted providers that can serve its API (own or translated); "
        "empty: the first in fallback order",
    )

    @field_validator("providers")
    @classmethod
    def _weights(cls, value: dict[str, int]) -> dict[str, int]:
        negative = [name for name, weight in value.items() if weight < 0]
        if negative:
            raise ValueError(f"weights must be >= 0: {', '.join(negative)}")
        if value and not any(value.values()):
            raise ValueError("at least one provider needs a weight above 0")
        return value


class Pause(Model):
    duration: Duration | None = Field(
        default=None, description="such as 30s, 10m, 1h; absent: wait until promoted"
    )


class Step(Model):
    set_weight: Percent | None = None
    set_shadow: Percent | None = Field(
        default=None, description="percent of mock-routed requests shadowed to the real arm"
    )
    pause: Pause | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [a for a in (self.set_weight, self.set_shadow, self.pause) if a is not None]
        if len(actions) != 1:
            raise ValueError("a step is exactly one of setWeight, setShadow or pause")
        return self


class PrometheusSource(Model):
    address: str = Field(pattern=r"^https?://")
    query: str = Field(min_length=1)


class AnalysisMetric(Model):
    name: str = Field(
        min_length=1,
        description="error-rate, latency-p95-ms, cost-per-request-usd, quality-score, "
        "brand-compliance, rejection-rate, judge-score or a metric sidecars report",
    )
    max: float | None = None
    min: float | None = None
    min_vs_mock: float | None = Field(
        default=None,
        description="the real arm's value may be at most this much below the mock arm's "
        "(e.g. -0.2) in the same window",
    )
    prometheus: PrometheusSource | None = None

    @model_validator(mode="after")
    def _mock_arm_needs_sidecars(self) -> AnalysisMetric:
        if self.min_vs_mock is not None and self.prometheus is not None:
            raise ValueError(MIN_VS_MOCK_NEEDS_SIDECARS)
        return self


MIN_VS_MOCK_NEEDS_SIDECARS = (
    "minVsMock compares the two arms the sidecars report; a prometheus metric has no mock arm"
)


class Analysis(Model):
    interval: Duration = "1m"
    failure_limit: int = Field(default=2, ge=1)
    min_requests: int = Field(default=20, ge=1)
    metrics: list[AnalysisMetric] = Field(default=[], max_length=32)


class Strategy(Model):
    steps: list[Step] = Field(min_length=1, max_length=64)
    analysis: Analysis | None = None


class CircuitBreaker(Model):
    failure_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    min_requests: int = Field(default=20, ge=1)
    window_seconds: int = Field(default=30, ge=1)
    open_seconds: int = Field(default=30, ge=1)
    half_open_probes: int = Field(default=3, ge=1)


class Retry(Model):
    """Retries of one provider within one request, and the deadline of the whole chain."""

    max_attempts: int = Field(default=3, ge=1, le=10, description="per provider, per request")
    initial_backoff_ms: int = Field(default=200, ge=0)
    max_backoff_ms: int = Field(default=5000, ge=0)
    deadline_ms: int = Field(
        default=60000, ge=1, description="bounds all attempts and waits before an answer starts"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Retry:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("maxBackoffMs must be >= initialBackoffMs")
        return self


class Budget(Model):
    daily_usd: USD | None = Field(default=None, alias="dailyUSD")
    monthly_usd: USD | None = Field(default=None, alias="monthlyUSD")
    on_exhausted: Literal["mock", "reject"] = "mock"


class TenantQuota(Model):
    requests_per_minute: int | None = Field(default=None, ge=1)
    daily_usd: USD | None = Field(default=None, alias="dailyUSD")
    monthly_usd: USD | None = Field(default=None, alias="monthlyUSD")


class Tenants(Model):
    """Per-tenant quotas; the tenant is the value of `header` (absent: tenant ``none``).

    `default` applies to every tenant on its own (each gets its own budget);
    `overrides` replaces it for the tenants it names.
    """

    header: str = Field(min_length=1)
    default: TenantQuota = TenantQuota()
    overrides: dict[str, TenantQuota] = {}

    def quota(self, tenant: str) -> TenantQuota:
        return self.overrides.get(tenant, self.default)


class QualityJudge(Model):
    """An LLM judge: a sampled share of answers scored 1-5 through the sidecar's providers."""

    provider: str = Field(min_length=1, max_length=63, description="one of spec.providers")
    model: str = Field(min_length=1)
    sample_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    max_concurrent: int = Field(default=2, ge=1, le=64)


class Quality(Model):
    """Answer quality: the rule-based scorer is always on; a judge is optional."""

    judge: QualityJudge | None = None


class LabelSelectorRequirement(Model):
    """One `matchExpressions` entry: `key` `operator` `values`."""

    key: str = Field(min_length=1, max_length=317, description="the label key")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(
        default=[], max_length=64, description="for In and NotIn; empty for Exists/DoesNotExist"
    )

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        return (self.key in labels) == (self.operator == "Exists")


class LabelSelector(Model):
    """Pods whose sidecars follow this rollout, as a Kubernetes label selector: every
    matchLabels pair and every matchExpressions requirement must hold; {} selects every
    pod in the namespace; a rollout without a selector admits no pod."""

    match_labels: dict[str, str] = Field(default={}, max_length=64)
    match_expressions: list[LabelSelectorRequirement] = Field(default=[], max_length=32)

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.holds(labels) for requirement in self.match_expressions
        )


class CacheRedis(Model):
    """A Redis shared by every sidecar of a rollout, so a miss on one pod is a hit on another."""

    url: str = Field(pattern=r"^rediss?://", description="redis://host:port/db; no password here")
    secret_ref: SecretRef | None = Field(
        default=None, description="Secret key holding the Redis password"
    )
    key_prefix: str = Field(default="llm-rollout:", max_length=128)
    timeout_ms: int = Field(
        default=50, ge=1, le=5000, description="a slower Redis answer counts as a miss"
    )


class Cache(Model):
    """Exact-match response cache: a repeated request is answered without a provider call.

    Off by default: serving a stored answer is only right for apps whose identical
    requests want identical answers, which ``when: deterministic`` approximates by
    caching only requests with ``temperature: 0`` or a ``seed``.
    """

    enabled: bool = False
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="in-process bound on stored answer bytes"
    )
    scope: Literal["tenant", "rollout"] = Field(
        default="tenant", description="'tenant' keys entries per tenant; 'rollout' shares them"
    )
    when: Literal["deterministic", "always"] = "deterministic"
    redis: CacheRedis | None = None


class LLMRolloutSpec(Model):
    """`spec` of an `LLMRollout`: everything a sidecar needs to route a request."""

    selector: LabelSelector | None = Field(
        default=None,
        description="pods whose sidecars follow this rollout: a Kubernetes label selector "
        "(matchLabels, matchExpressions); without one, no pod may follow it",
    )
    # Bounded lists keep the CRD's CEL cross-checks within the API server's cost budget.
    providers: list[Provider] = Field(default=[], max_length=16)
    fallback: list[Annotated[str, Field(max_length=63)]] = Field(
        default=[],
        max_length=17,
        description="order in which providers are tried; 'mock' is the mock backend",
    )
    mock: MockSpec = MockSpec()
    traffic: Traffic = Traffic()
    strategy: Strategy | None = None
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    retry: Retry = Retry()
    budget: Budget = Budget()
    tenants: Tenants | None = None
    quality: Quality = Quality()
    cache: Cache = Cache()
    force_mock: bool = Field(
        default=False, description="kill switch: every request goes to the mock at once"
    )

    @model_validator(mode="after")
    def _names_resolve(self) -> LLMRolloutSpec:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(duplicates)}")
        unknown = [n for n in self.fallback if n != MOCK and n not in names]
        if unknown:
            raise ValueError(
                f"fallback names unknown provider(s) {', '.join(unknown)}; "
                f"known: {', '.join(names) or 'none'} and 'mock'"
            )
        weighted = [n for n in self.traffic.providers if n not in names]
        if weighted:
            raise ValueError(
                f"traffic.providers names unknown provider(s) {', '.join(weighted)}; "
                f"known: {', '.join(names) or 'none'}"
            )
        judge = self.quality.judge
        if judge is not None and judge.provider not in names:
            raise ValueError(
                f"quality.judge.provider names unknown provider {judge.provider}; "
                f"known: {', '.join(names) or 'none'}"
            )
        judged_by = self.provider(judge.provider) if judge is not None else None
        if judged_by is not None and judged_by.type == "azure-openai":
            raise ValueError(
                f"quality.judge.provider: '{judged_by.name}' is an azure-openai provider, "
                "which cannot judge yet; name an openai, anthropic or gemini provider"
            )
        return self

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)


class ObjectMeta(BaseModel):
    """The parts of Kubernetes metadata a standalone file may carry; others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = "standalone"
    namespace: str | None = None


class LLMRollout(Model):
    """A whole `LLMRollout` document (status is the operator's and not read here)."""

    model_config = ConfigDict(extra="ignore")
    api_version: Literal["llm-rollout.io/v1alpha1"] = "llm-rollout.io/v1alpha1"
    kind: Literal["LLMRollout"] = "LLMRollout"
    metadata: ObjectMeta = ObjectMeta()
    spec: LLMRolloutSpec
