"""The LLM judge: its requests in each provider's dialect, its reply read robustly, and
its calls through a running sidecar to the fake providers (budget, metrics, window)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from proxy.quality.judge import (
    MAX_CHARS,
    PROMPT_VERSION,
    RUBRIC,
    judge_request,
    parse_score,
    reply_text,
    sampled,
)
from proxy.server.data import JUDGE
from proxy.server.serve import Sidecar
from tests.conftest import NO_RETRY, StartSidecar, anthropic_client, real_spec, wait_until
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 4}', 4.0),
        ('```json\n{"score": 5}\n```', 5.0),
        ('Sure! Here is my grade: {"reason": "fine", "score": "3"} Thanks.', 3.0),
        ("score: 2", 2.0),
        ('{"score": 4.5}', 4.5),
        ('{"score": 9}', None),
        ('{"score": 0}', None),
        ('{"score": true}', None),
        ("I cannot grade this.", None),
        ("", None),
    ],
)
def test_a_judges_reply_is_read_robustly_and_only_a_1_to_5_score_counts(
    text: str, score: float | None
) -> None:
    assert parse_score(text) == score


def test_each_provider_type_gets_the_rubric_in_its_own_dialect() -> None:
    question, answer = "Write a tagline" + "x" * 20_000, "Fresh bread daily."
    openai = judge_request("openai", "gpt-4o-mini", question, answer)
    anthropic = judge_request("anthropic", "claude-haiku-4-5", question, answer)
    gemini = judge_request("gemini", "gemini-2.5-flash", question, answer)
    assert (openai.path, anthropic.path) == ("/v1/chat/completions", "/v1/messages")
    assert gemini.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    bodies = [json.loads(r.body) for r in (openai, anthropic, gemini)]
    assert bodies[0]["messages"][0] == {"role": "system", "content": RUBRIC}
    assert bodies[1]["system"] == RUBRIC
    assert bodies[2]["systemInstruction"]["parts"][0]["text"] == RUBRIC
    user = bodies[0]["messages"][1]["content"]
    assert answer in user
    assert len(user) < 2 * MAX_CHARS + 200, "the request is cut: a judge call's cost is bounded"
    for request in (openai, anthropic, gemini):  # each parses as its dialect's request
        parsed = request.dialect.parse(request.body, path_model="gemini-2.5-flash")
        assert parsed.max_tokens == 64
    assert PROMPT_VERSION == "judge-v1"


def test_reply_text_reads_each_dialects_answer() -> None:
    assert reply_text("openai", b'{"choices":[{"message":{"content":"{\\"score\\": 4}"}}]}') == (
        '{"score": 4}'
    )
    assert reply_text("anthropic", b'{"content":[{"type":"text","text":"score: 3"}]}') == (
        "score: 3"
    )
    body = b'{"candidates":[{"content":{"parts":[{"text":"{\\"score\\":"},{"text":"5}"}]}}]}'
    assert reply_text("gemini", body) == '{"score":5}'
    assert reply_text("openai", b"not json") == ""


def test_the_sample_rate_is_the_share_judged() -> None:
    draws = [i / 1000 for i in range(1000)]
    assert sum(sampled(0.05, d) for d in draws) == 50
    assert not any(sampled(0.0, d) for d in draws)


def judged_spec(*fakes: Any, provider: str, model: str, **extra: Any) -> dict[str, Any]:
    judge = {"provider": provider, "model": model, "sampleRate": 1.0} | extra.pop("judge", {})
    return real_spec(*fakes, weight=0, quality={"judge": judge}, **extra)


def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    return sidecar.runtime.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_judged_answer_gets_the_judges_score_in_metrics_window_and_budget(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    fake_openai.answer_text = 'Grade: {"score": 4}'
    sidecar = await start_sidecar(
        judged_spec(
            fake_openai, provider="openai-primary", model="gpt-4o-mini", budget={"dailyUSD": "1"}
        )
    )
    judge = sidecar.data_app[JUDGE]
    judge.maybe_judge("mock", "mock", False, "Write a tagline", "Fresh bread daily.")
    judge.maybe_judge("real", "openai-primary", True, "Write a tagline", "Bread.")
    await wait_until(lambda: len(fake_openai.requests) == 2)
    sent = fake_openai.requests[0].json
    assert sent["model"] == "gpt-4o-mini"
    assert "Fresh bread daily." in sent["messages"][1]["content"]
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {fake_openai.key}"
    labels = {"backend": "mock", "judge_model": "gpt-4o-mini", "shadow": "false"}
    await wait_until(
        lambda: metric(sidecar, "llm_rollout_quality_judge_score_count", arm="mock", **labels) == 1
    )
    assert metric(sidecar, "llm_rollout_quality_judge_score_sum", arm="mock", **labels) == 4
    await wait_until(
        lambda: metric(sidecar, "llm_rollout_quality_judge_score_count", arm="real",
                       backend="openai-primary", judge_model="gpt-4o-mini", shadow="true")
        == 1
    )  # fmt: skip
    window = sidecar.runtime.stats.drain()
    assert (window["mock"].quality.judged, window["mock"].quality.judge_sum) == (1, 4.0)
    assert (window["real"].quality.judged, window["real"].quality.judge_sum) == (1, 4.0)
    daily = {s.key: s for s in sidecar.runtime.budget.ledger.states()}["rollout/daily"]
    assert daily.reserved == 0
    assert daily.spent > Decimal(0), "a judge call is spent from the budget"

    # Gemini as the judge: its own dialect, JSON mode.
    fake_gemini.json_answer = '{"score": 2}'
    gem = await start_sidecar(
        judged_spec(gemini_fake=fake_gemini, provider="gemini-primary", model="gemini-2.5-flash")
    )
    gem.data_app[JUDGE].maybe_judge("real", "gemini-primary", False, "Q", "A")
    await wait_until(lambda: gem.runtime.stats.drain().get("real") is not None, within=10)
    assert fake_gemini.requests[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    labels = {"backend": "gemini-primary", "judge_model": "gemini-2.5-flash", "shadow": "false"}
    assert metric(gem, "llm_rollout_quality_judge_score_sum", arm="real", **labels) == 2


async def test_a_failing_judge_is_counted_and_scores_nothing(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.faults.append(Fault(status=500))
    sidecar = await start_sidecar(
        judged_spec(fake_openai, provider="openai-primary", model="gpt-4o-mini", **NO_RETRY)
    )
    judge = sidecar.data_app[JUDGE]
    judge.maybe_judge("real", "openai-primary", False, "Q", "A")
    await wait_until(
        lambda: metric(sidecar, "llm_rollout_quality_judge_failures_total", reason="upstream") == 1
    )
    fake_openai.answer_text = "I would rather not grade this."
    judge.maybe_judge("real", "openai-primary", False, "Q", "A")
    await wait_until(
        lambda: metric(sidecar, "llm_rollout_quality_judge_failures_total", reason="no-score") == 1
    )
    window = sidecar.runtime.stats.drain()
    assert "real" not in window or window["real"].quality.judged == 0
    labels = {"backend": "openai-primary", "judge_model": "gpt-4o-mini", "shadow": "false"}
    assert metric(sidecar, "llm_rollout_quality_judge_score_count", arm="real", **labels) == 0


async def test_judge_calls_beyond_max_concurrent_are_skipped_and_a_tiny_budget_refuses_them(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.faults.extend(Fault(first_byte_delay=2) for _ in range(2))
    fake_openai.answer_text = '{"score": 5}'
    sidecar = await start_sidecar(
        judged_spec(
            fake_openai, provider="openai-primary", model="gpt-4o-mini", judge={"maxConcurrent": 2}
        )
    )
    judge = sidecar.data_app[JUDGE]
    for _ in range(5):
        judge.maybe_judge("real", "openai-primary", False, "Q", "A")
    assert metric(sidecar, "llm_rollout_quality_judge_failures_total", reason="busy") == 3
    await wait_until(lambda: len(fake_openai.requests) == 2)

    broke = await start_sidecar(
        judged_spec(
            fake_openai,
            provider="openai-primary",
            model="gpt-4o-mini",
            budget={"dailyUSD": "0.000001"},
        )
    )
    broke.data_app[JUDGE].maybe_judge("real", "openai-primary", False, "Q", "A")
    await wait_until(
        lambda: metric(broke, "llm_rollout_quality_judge_failures_total", reason="budget") == 1
    )
    assert len(fake_openai.requests) == 2, "a refused judge call is not sent"


async def test_every_scored_client_answer_is_offered_to_the_judge(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    """Wired end to end: a client's answer is scored, then (sampleRate 1) judged."""
    fake_openai.answer_text = '{"score": 5}'
    sidecar = await start_sidecar(
        judged_spec(fake_openai, provider="openai-primary", model="gpt-4o-mini")
    )
    anthropic = anthropic_client(sidecar)
    await anthropic.messages.create(
        model="claude-haiku-4-5", max_tokens=200,
        messages=[{"role": "user", "content": "Write a tagline for fresh bread"}],
    )  # fmt: skip
    await wait_until(lambda: len(fake_openai.requests) == 1)
    assert "fresh bread" in fake_openai.requests[0].json["messages"][1]["content"]
    labels = {"arm": "mock", "backend": "mock", "judge_model": "gpt-4o-mini", "shadow": "false"}
    await wait_until(
        lambda: metric(sidecar, "llm_rollout_quality_judge_score_count", **labels) == 1
    )
    window = sidecar.runtime.stats.drain()["mock"]
    assert (window.quality.scored, window.quality.judged, window.quality.judge_sum) == (1, 1, 5)
