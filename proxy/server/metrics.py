"""Prometheus metrics of one sidecar, with OpenTelemetry GenAI names where one exists.

Each `Metrics` has its own registry so that several sidecars can live in one test
process without their counters mixing.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from proxy.dialects import Usage

#: Quality scores run 0-5 (`proxy.quality`); buckets at the plan's bars (4.0, 4.5).
SCORE_BUCKETS = (0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 4.75, 5.0)
# OpenTelemetry's advised buckets for gen_ai.client.token.usage and .operation.duration.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llm_rollout_requests",
            "Requests answered, by dialect, backend (provider name or mock), arm and HTTP status.",
            ["dialect", "backend", "arm", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Request to last byte of the answer (OTel gen_ai.client.operation.duration).",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "backend"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.first_chunk = Histogram(
            "llm_rollout_time_to_first_chunk_seconds",
            "Time from request to the first byte of a streamed answer.",
            ["dialect", "backend"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per answer (OTel gen_ai.client.token.usage), by gen_ai_token_type.",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_token_type", "backend"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.stream_errors = Counter(
            "llm_rollout_stream_errors",
            "Streams that failed after the first byte and ended with the dialect's error event.",
            ["dialect", "backend", "reason"],
            registry=r,
        )
        self.attempts = Counter(
            "llm_rollout_upstream_attempts",
            "Calls to a provider, by outcome: its HTTP status, timeout or unreachable.",
            ["provider", "outcome"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "llm_rollout_breaker_state",
            "Circuit breaker of each provider: 0 closed, 1 open, 2 half-open.",
            ["provider"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "llm_rollout_breaker_transitions",
            "Circuit breaker state changes, by the state entered.",
            ["provider", "to"],
            registry=r,
        )
        self.refused = Counter(
            "llm_rollout_refused",
            "Requests refused before any backend: a tenant over its quota, or no usable backend.",
            ["dialect", "reason"],
            registry=r,
        )
        self.key_problems = Counter(
            "llm_rollout_key_problems",
            "A provider's key file went missing or bad; the last good key is still used.",
            ["provider"],
            registry=r,
        )
        self.key_rejections = Counter(
            "llm_rollout_key_rejections",
            "Answers 401/403 from a provider to its key (key: the key's fingerprint).",
            ["provider", "key"],
            registry=r,
        )
        self.key_state = Gauge(
            "llm_rollout_key_state",
            "Each provider key's state (key: its fingerprint): 0 ok, 1 rejected by the provider.",
            ["provider", "key"],
            registry=r,
        )
        self.audit_events = Counter(
            "llm_rollout_audit_events",
            "Events written to the audit log, by event (an alert watches for silence).",
            ["event"],
            registry=r,
        )
        self.shadow_requests = Counter(
            "llm_rollout_shadow_requests",
            "Shadow copies of mock-routed requests (traffic.shadow), by provider and result: "
            "sent (answered), failed (sent, no good answer), skipped (maxConcurrent in "
            "flight), refused (the budget could not hold it; not sent).",
            ["provider", "result"],
            registry=r,
        )
        self.judge_score = Histogram(
            "llm_rollout_quality_judge_score",
            "1-5 scores the LLM judge (quality.judge) gave to sampled answers.",
            ["arm", "backend", "judge_model", "shadow"],
            buckets=(1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5),
            registry=r,
        )
        self.judge_failures = Counter(
            "llm_rollout_quality_judge_failures",
            "Sampled answers the judge did not score, by reason: busy (maxConcurrent in "
            "flight), budget, unavailable (breaker or rate limit), upstream, no-score.",
            ["reason"],
            registry=r,
        )
        self.config_reloads = Counter(
            "llm_rollout_config_reloads",
            "Config changes seen: applied, or rejected (the last good config kept serving).",
            ["result"],
            registry=r,
        )
        self.config_version = Gauge(
            "llm_rollout_config_version",
            "Version of the config in force (increments on each applied change).",
            registry=r,
        )
        self.real_weight = Gauge(
            "llm_rollout_real_weight_percent",
            "Percent of requests routed to real providers by the config in force.",
            registry=r,
        )

        # Cost and budgets (proxy.server.budget). Money is Decimal in the ledger; the
        # exposition format is float, which is fine for watching, not for accounting.
        self.cost = Counter(
            "llm_rollout_cost_usd",
            "USD spent on real calls (settled actual cost), by provider, model, tenant, arm "
            "and whether the call was a shadow copy.",
            ["provider", "model", "tenant", "arm", "shadow"],
            registry=r,
        )
        self.mock_shadow_cost = Counter(
            "llm_rollout_mock_shadow_cost_usd",
            "USD the mock's answers would have cost on the real provider, by provider and model.",
            ["provider", "model"],
            registry=r,
        )
        self.budget_thresholds = Counter(
            "llm_rollout_budget_threshold_events",
            "Budgets reaching 50, 80 or 100 % of their cap (once per budget per period).",
            ["budget", "percent"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "llm_rollout_budget_refusals",
            "Real calls not made because their worst case did not fit a budget.",
            ["budget"],
            registry=r,
        )
        self.unpriced = Counter(
            "llm_rollout_unpriced_requests",
            "Real calls to a model with no known price (add providers[].prices for it).",
            ["provider", "model"],
            registry=r,
        )
        self.ledger_errors = Counter(
            "llm_rollout_budget_ledger_errors",
            "Ledger file problems: corrupt (budgets count as spent) or write failures.",
            ["kind"],
            registry=r,
        )

        # Answer quality (proxy.quality; recorded by proxy.server.quality). `shadow` is
        # "true" for a background copy of a mock-routed request sent to the real provider.
        self.quality_score = Histogram(
            "llm_rollout_quality_score",
            "Rule-based quality score (0-5) of each answer, by arm, backend, task and shadow.",
            ["arm", "backend", "task", "shadow"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.quality_rejections = Counter(
            "llm_rollout_quality_rejections",
            "Answers with a hard quality failure, by reason (empty, refusal, truncated, ...).",
            ["arm", "backend", "reason", "shadow"],
            registry=r,
        )
        self.brand_compliance = Counter(
            "llm_rollout_brand_compliance",
            "Answers with a known brand, by result: compliant or violation.",
            ["arm", "backend", "result", "shadow"],
            registry=r,
        )

        # The process itself, for leaks a soak shows (`make soak`): RSS, open fds and CPU
        # (prometheus-client's process_* metrics), asyncio tasks and open connections.
        ProcessCollector(registry=r)
        self.tasks = Gauge(
            "llm_rollout_asyncio_tasks", "asyncio tasks alive in the sidecar.", registry=r
        )
        self.tasks.set_function(_tasks_alive)
        self.connections = Gauge(
            "llm_rollout_open_connections",
            "Connections open on each port of the sidecar (data, admin).",
            ["port"],
            registry=r,
        )

    def record_usage(
        self, operation: str, provider: str, model: str, backend: str, usage: Usage
    ) -> None:
        for token_type, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            if count:
                self.tokens.labels(operation, provider, model, token_type, backend).observe(count)


def _tasks_alive() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # read outside the event loop: nothing to count
        return 0.0
