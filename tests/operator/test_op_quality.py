"""The quality gate under kopf: shadow steps and quality metrics judged from real sidecars.

The operator runs for real against the emulated API server; sidecars follow it and
answer through the official OpenAI SDK; the "real" provider is a local fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web
from conftest import LABELS, Cluster, provider_spec

from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI


def shadows(cluster: Cluster) -> list[int]:
    """The shadow percent each sidecar applies (0 until the operator says otherwise)."""
    out = []
    for sidecar, _ in cluster.sidecars:
        shadow = sidecar.runtime.snapshot.spec.traffic.shadow
        out.append(0 if shadow is None else shadow.percent)
    return out


async def wait_shadows(cluster: Cluster, percent: int, within: float = 10) -> None:
    """Until every sidecar applies `percent` (the operator pushes it over the long-poll)."""
    deadline = time.monotonic() + within
    while shadows(cluster) != [percent] * len(cluster.sidecars):
        assert time.monotonic() < deadline, f"sidecars at {shadows(cluster)}, not {percent}"
        await asyncio.sleep(0.02)


def shadow_sent(cluster: Cluster) -> float:
    """Shadow copies the sidecars sent and got an answer to."""
    labels = {"provider": "openai-primary", "result": "sent"}
    return sum(
        s.runtime.metrics.registry.get_sample_value("llm_rollout_shadow_requests_total", labels)
        or 0.0
        for s, _ in cluster.sidecars
    )


SHADOW_FIRST: dict[str, Any] = {
    "steps": [{"setShadow": 100}, {"pause": {"duration": "2s"}}, {"setWeight": 50},
              {"pause": {}}],
    "analysis": {"interval": "1s", "failureLimit": 1, "minRequests": 3,
                 "metrics": [{"name": "error-rate", "max": 0.05}]},
}  # fmt: skip


async def test_shadow_steps_are_judged_on_the_copies_before_any_user_gets_a_real_answer(
    cluster: Cluster,
) -> None:
    await cluster.start_operator()
    spec = provider_spec(cluster, traffic={"shadow": {"percent": 0, "maxConcurrent": 4}},
                         strategy=SHADOW_FIRST)  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_status("marketing", lambda s: s["shadowPercent"] == 100)
    async with cluster.traffic(rps=30) as counts:
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Paused")
        await cluster.wait_weights(50)
        await asyncio.sleep(0.5)  # requests sent at 50 % come back
    assert (status["realWeight"], status["shadowPercent"]) == (50, 100)
    # The pause at shadow 100 % / weight 0 % ended on a passing analysis of copies alone:
    # every real-arm request in that window was a shadow copy; no user got a real answer.
    *_, gate = [h for h in status["history"] if h["step"] == 1 and h["verdict"] == "Passed"]
    assert (gate["weight"], gate["shadow"]) == (0, 100)
    assert gate["requests"]["real"] == gate["quality"]["real"]["shadowRequests"] >= 3
    assert gate["requests"]["mock"] > 0, "the mock answered the clients meanwhile"
    assert shadow_sent(cluster) > 0, "the provider answered copies"
    assert counts.get("openai-primary", 0) > 0, "then, at 50 %, users got real answers"


async def test_a_provider_failing_the_shadow_copies_rolls_back_and_stops_the_copies(
    cluster: Cluster,
) -> None:
    await cluster.start_operator()
    strategy = SHADOW_FIRST | {"steps": [{"setShadow": 100}, {"pause": {"duration": "1m"}}]}
    spec = provider_spec(cluster, traffic={"shadow": {"percent": 0, "maxConcurrent": 4}},
                         strategy=strategy)  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_status("marketing", lambda s: s["shadowPercent"] == 100)
    await wait_shadows(cluster, 100)
    cluster.provider.failing = True
    async with cluster.traffic(rps=30) as counts:
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Degraded")
        await wait_shadows(cluster, 0)  # the sidecars stop copying to the failing provider
    assert set(counts) == {"mock"}, f"no user saw the failing provider: {counts}"
    assert (status["realWeight"], status["shadowPercent"]) == (0, 0)
    rolled_back = await cluster.wait_event("RolledBack")
    assert "shadow off: error-rate 1 > max 0.05 (real arm; mock arm 0)" in rolled_back["message"]


# --- quality metrics: answers scored by the sidecars (proxy.quality) ----------------------

BRAND = json.dumps({"name": "Acme", "keywords": ["spring"], "avoid": ["cheap"]})
SCHEMA = {"type": "object", "properties": {"headline": {"type": "string"}},
          "required": ["headline"], "additionalProperties": False}  # fmt: skip
TOOL = {"type": "function", "function": {
    "name": "schedule_post", "description": "Schedule the post.",
    "parameters": {"type": "object", "properties": {"at": {"type": "string"}},
                   "required": ["at"], "additionalProperties": False}}}  # fmt: skip

#: What the app asks, per kind of request (official SDK keyword arguments).
ASKS: dict[str, dict[str, Any]] = {
    "post": {"messages": [{"role": "user", "content": "Write a tweet about our spring sale."}]},
    "brand": {"messages": [{"role": "user", "content": "Write a tweet about our spring sale."}],
              "extra_headers": {"x-brand-context": BRAND}},
    "json": {"messages": [{"role": "user", "content": "Give the sale's headline."}],
             "response_format": {"type": "json_schema",
                                 "json_schema": {"name": "headline", "schema": SCHEMA}}},
    "tool": {"messages": [{"role": "user", "content": "Schedule the spring sale announcement."}],
             "tools": [TOOL]},
}  # fmt: skip

GOOD_TEXT = "Acme's spring sale starts today: 20% off every plan until Sunday. #SpringSale"


def message(content: str | None = None, refusal: str | None = None,
            calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if calls:
        out["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": c}
                             for i, c in enumerate(calls)]  # fmt: skip
    return out


def good(ask: str) -> tuple[dict[str, Any], str]:
    """A good answer to each kind of request: the message and the finish reason."""
    if ask == "json":
        return message(json.dumps({"headline": "Spring sale: 20% off"})), "stop"
    if ask == "tool":
        return message(calls=[{"name": "schedule_post",
                               "arguments": json.dumps({"at": "2026-03-01T09:00:00Z"})}]), \
            "tool_calls"  # fmt: skip
    return message(GOOD_TEXT), "stop"


#: Each way of answering badly: the request it answers, its answer, the metric that fails.
BAD: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "empty": ("post", message(""), "stop", "rejection-rate"),
    "refusal": ("post", message(refusal="I can't help with that request."), "stop",
                "rejection-rate"),
    "truncated": ("post", message("Acme's spring sale starts today: 20% off every"), "length",
                  "rejection-rate"),
    "schema-invalid JSON": ("json", message(json.dumps({"title": 42})), "stop", "rejection-rate"),
    "bad tool args": ("tool", message(calls=[{"name": "schedule_post",
                                              "arguments": json.dumps({"at": 5})}]),
                      "tool_calls", "rejection-rate"),
    "avoided words": ("brand", message("Acme's spring sale: cheap plans for everyone. #Spring"),
                      "stop", "brand-compliance"),
    "over-limit post": ("post", message(GOOD_TEXT + " Every plan, every team." * 12), "stop",
                        "quality-score"),
}  # fmt: skip


class AnsweringOpenAI(FakeOpenAI):
    """Chat completions answered as scripted: well to every request, or one way badly."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: tuple[dict[str, Any], str] | None = None

    async def chat(self, request: web.Request, payload: Any, fault: Fault) -> web.StreamResponse:
        assert not payload.get("stream"), "these tests ask without streaming"
        ask = "json" if payload.get("response_format") else "tool" if payload.get("tools") else ""
        answer, finish = self.bad if self.bad is not None else good(ask)
        return web.json_response({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
            "model": payload["model"],
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                         "message": answer}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 20, "total_tokens": 31},
        }, headers=self.ok_headers())  # fmt: skip


@pytest.fixture
async def answering(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnsweringOpenAI]:
    fake = AnsweringOpenAI()
    monkeypatch.setenv("TEST_OPENAI_KEY", fake.key)
    await fake.start()
    yield fake
    await fake.stop()


#: The migration plan's bars.
QUALITY_ANALYSIS = {
    "interval": "1s", "failureLimit": 1, "minRequests": 4,
    "metrics": [{"name": "quality-score", "min": 4.0, "minVsMock": -0.2},
                {"name": "brand-compliance", "min": 0.95},
                {"name": "rejection-rate", "max": 0.05}],
}  # fmt: skip


def quality_spec(fake: FakeOpenAI, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": LABELS},
        "providers": [{"name": "openai-primary", "type": "openai", "baseURL": f"{fake.base}/v1",
                       "apiKey": {"env": "TEST_OPENAI_KEY"}}],
        "fallback": ["openai-primary", "mock"],
        "strategy": {"steps": steps, "analysis": QUALITY_ANALYSIS},
    }  # fmt: skip


@contextlib.asynccontextmanager
async def asking(cluster: Cluster, asks: list[str], rps: float = 30) -> AsyncIterator[None]:
    """Requests of the given kinds, in turn, through every sidecar with the official SDK."""
    clients = [openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{s.data_port}/v1",
                                  api_key="app-key", max_retries=0)
               for s, _ in cluster.sidecars]  # fmt: skip
    calls: set[asyncio.Task[Any]] = set()

    async def pump() -> None:
        for index in itertools.count():
            kwargs = ASKS[asks[index % len(asks)]]
            client = clients[index % len(clients)]
            call = asyncio.create_task(
                client.chat.completions.create(model="gpt-4o-mini", **kwargs)
            )
            calls.add(call)
            call.add_done_callback(calls.discard)
            await asyncio.sleep(1 / rps)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        results = await asyncio.gather(*calls, return_exceptions=True)
        for client in clients:
            await client.close()
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"the app saw errors: {errors[:3]}"


async def test_a_provider_that_answers_well_passes_the_quality_bars(
    cluster: Cluster, answering: AnsweringOpenAI
) -> None:
    await cluster.start_operator()
    steps = [{"setWeight": 50}, {"pause": {"duration": "2s"}}, {"setWeight": 80}, {"pause": {}}]
    await cluster.apply("marketing", quality_spec(answering, steps))
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_weights(50)
    async with asking(cluster, list(ASKS)):
        status = await cluster.wait_status("marketing", lambda s: s["realWeight"] == 80)
    *_, gate = [h for h in status["history"] if h["step"] == 1 and h["verdict"] == "Passed"]
    real, mock = gate["quality"]["real"], gate["quality"]["mock"]
    assert real["quality-score"] >= 4.0, gate
    assert real["quality-score"] >= mock["quality-score"] - 0.2, gate
    assert (real["rejection-rate"], real["brand-compliance"]) == (0.0, 1.0), gate
    assert len(answering.requests) >= 4


@pytest.mark.parametrize("way", list(BAD))
async def test_a_provider_answering_badly_fails_the_step_and_rolls_back(
    cluster: Cluster, answering: AnsweringOpenAI, way: str
) -> None:
    ask, answer, finish, metric = BAD[way]
    answering.bad = (answer, finish)
    await cluster.start_operator()
    steps = [{"setWeight": 50}, {"pause": {"duration": "1m"}}]
    await cluster.apply("marketing", quality_spec(answering, steps))
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_weights(50)
    async with asking(cluster, [ask]):
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Degraded")
        await cluster.wait_weights(0, within=5)
    assert status["realWeight"] == 0
    rolled_back = await cluster.wait_event("RolledBack")
    assert rolled_back["type"] == "Warning"
    assert f"; {metric} " in "; " + rolled_back["message"].partition("shadow off: ")[2], (
        rolled_back["message"]
    )
    assert "(real arm; mock arm" in rolled_back["message"]


async def test_bad_answers_to_shadow_copies_roll_back_before_any_user_saw_one(
    cluster: Cluster, answering: AnsweringOpenAI
) -> None:
    ask, answer, finish, metric = BAD["avoided words"]
    answering.bad = (answer, finish)
    await cluster.start_operator()
    spec = quality_spec(answering, [{"setShadow": 100}, {"pause": {"duration": "1m"}}])
    spec["traffic"] = {"shadow": {"percent": 0, "maxConcurrent": 8}}
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 2)
    await wait_shadows(cluster, 100)
    async with asking(cluster, [ask]):
        status = await cluster.wait_status("marketing", lambda s: s["phase"] == "Degraded")
        await wait_shadows(cluster, 0)
    assert (status["realWeight"], status["shadowPercent"]) == (0, 0)
    (failed,) = [h for h in status["history"] if h["verdict"] == "Failed"]
    assert failed["requests"]["real"] == failed["quality"]["real"]["shadowRequests"] > 0
    assert failed["quality"]["real"]["brand-compliance"] == 0.0
    assert failed["quality"]["mock"]["brand-compliance"] == 1.0
    rolled_back = await cluster.wait_event("RolledBack")
    assert f"{metric} 0 < min 0.95 (real arm; mock arm 1)" in rolled_back["message"]
    assert len(answering.requests) > 0, "the provider got the copies, and no user its answers"
