"""Simulation profiles: faults look exactly like the provider's, latency follows p50/p95."""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from proxy.config import parse_spec
from proxy.dialects import ROUTES
from proxy.mock import MockContext, answer
from proxy.mock.simulate import first_token_seconds
from tests.conftest import (
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
    real_spec,
)
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write a tweet"}]}
MESSAGES = {
    "model": "claude-sonnet-5",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "Write a tweet"}],
}


def faulty(kind: str, **errors: Any) -> dict[str, Any]:
    return {
        "mock": {"seed": 3, "errors": {"rate": 1.0, "kinds": {kind: 1}} | errors},
        "traffic": {"realWeight": 0},
    }


OPENAI_FAULTS = [
    ("rate_limit", 429, openai.RateLimitError, "rate_limit_error"),
    ("server_error", 500, openai.InternalServerError, "server_error"),
    ("unavailable", 503, openai.InternalServerError, "server_error"),
    ("overloaded", 503, openai.InternalServerError, "server_error"),
]


@pytest.mark.parametrize(("kind", "status", "exception", "error_type"), OPENAI_FAULTS)
async def test_openai_faults(
    start_sidecar: StartSidecar, kind: str, status: int, exception: type, error_type: str
) -> None:
    client = openai_client(await start_sidecar(faulty(kind, retryAfterSeconds=7)))
    with pytest.raises(exception) as caught:
        await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] == error_type
    assert "simulated" in error.body["message"]
    if kind == "rate_limit":
        assert error.response.headers["retry-after"] == "7"
    assert error.response.headers["x-llm-backend"] == "mock"


ANTHROPIC_FAULTS = [
    ("rate_limit", 429, anthropic.RateLimitError, "rate_limit_error"),
    ("server_error", 500, anthropic.InternalServerError, "api_error"),
    ("unavailable", 503, anthropic.ServiceUnavailableError, "api_error"),
    ("overloaded", 529, anthropic.OverloadedError, "overloaded_error"),
    ("timeout", 504, anthropic.GatewayTimeoutError, "timeout_error"),
]


@pytest.mark.parametrize(("kind", "status", "exception", "error_type"), ANTHROPIC_FAULTS)
async def test_anthropic_faults(
    start_sidecar: StartSidecar, kind: str, status: int, exception: type, error_type: str
) -> None:
    client = anthropic_client(await start_sidecar(faulty(kind, timeoutSeconds=0.05)))
    with pytest.raises(exception) as caught:
        await client.messages.create(**MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == status
    body = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == caught.value.response.headers["x-request-id"]


async def test_gemini_rate_limit_is_resource_exhausted(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(faulty("rate_limit"))
    async with gemini_client(sidecar).aio as client:
        with pytest.raises(genai_errors.ClientError) as caught:
            await client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


async def test_gemini_overloaded_is_503_unavailable(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(faulty("overloaded"))
    async with gemini_client(sidecar).aio as client:
        with pytest.raises(genai_errors.ServerError) as caught:
            await client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert caught.value.code == 503
    assert caught.value.status == "UNAVAILABLE"


async def test_timeout_hangs_until_the_client_gives_up(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(faulty("timeout", timeoutSeconds=1.5))
    client = openai_client(sidecar).with_options(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert time.monotonic() - started < 1.4, "the client's own timeout fired, not the mock's"


async def test_openai_stream_cut_raises_after_some_text(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(faulty("stream_cut")))
    stream = await client.chat.completions.create(**CHAT, stream=True)  # type: ignore[call-overload]
    received = ""
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received, "some text arrived before the cut"
    assert "interrupted" in caught.value.message


async def test_anthropic_stream_cut_ends_with_overloaded_error(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(faulty("stream_cut")))
    received = ""
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(**MESSAGES) as stream:  # type: ignore[arg-type]
            async for text in stream.text_stream:
                received += text
    assert received
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_stream_cut_spares_plain_requests(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(faulty("stream_cut")))
    completion = await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert completion.choices[0].message.content


async def test_a_repeated_request_draws_a_fresh_fault(start_sidecar: StartSidecar) -> None:
    doc = {"mock": {"seed": 1, "errors": {"rate": 0.5, "kinds": {"rate_limit": 1}}},
           "traffic": {"realWeight": 0}}  # fmt: skip
    client = openai_client(await start_sidecar(doc))

    async def status(ask: dict[str, Any]) -> int:
        try:
            await client.chat.completions.create(**ask)
        except openai.RateLimitError:
            return 429
        return 200

    failing = [ask for ask in map(_chat, range(20)) if await status(ask) == 429]
    assert 3 <= len(failing) <= 17
    # Retrying the same bytes (as an SDK does) is not doomed to the same fault.
    for ask in failing:
        assert 200 in [await status(ask) for _ in range(12)]


# -- pure: rates, determinism, latency distribution ------------------------------------------


_DIALECTS = {d.name: d for _, d in ROUTES}


def _chat(i: int) -> dict[str, Any]:
    return CHAT | {"messages": [{"role": "user", "content": f"q{i}"}]}


def _raw(body: dict[str, Any]) -> bytes:
    """Request bytes (the mock's draws depend on them, as they do under a real SDK)."""
    return json.dumps(body).encode()


def _statuses(spec_doc: dict[str, Any], count: int) -> list[int]:
    spec, dialect = parse_spec(spec_doc).mock, _DIALECTS["openai.chat"]
    return [
        answer("openai.chat", dialect.parse(_raw(_chat(i))), spec, MockContext()).status
        for i in range(count)
    ]


def test_error_rate_and_kinds_follow_the_profile() -> None:
    doc = {"mock": {"seed": 9, "errors": {"rate": 0.2, "kinds": {"rate_limit": 3,
                                                                  "server_error": 1}}}}  # fmt: skip
    statuses = _statuses(doc, 2000)
    failed = [s for s in statuses if s != 200]
    assert 0.16 < len(failed) / len(statuses) < 0.24
    assert set(failed) == {429, 500}
    assert 2.2 < failed.count(429) / failed.count(500) < 4.2


def test_faults_replay_under_a_seed() -> None:
    doc = {"mock": {"seed": 4, "errors": {"rate": 0.3}}}
    assert _statuses(doc, 300) == _statuses(doc, 300)
    other = {"mock": {"seed": 5, "errors": {"rate": 0.3}}}
    assert _statuses(doc, 300) != _statuses(other, 300)


def test_default_kinds_are_the_four_common_errors() -> None:
    statuses = set(_statuses({"mock": {"errors": {"rate": 1.0}}}, 300))
    assert statuses == {429, 500, 503}  # OpenAI has no 529: overloaded is a 503 there


def test_first_token_latency_fits_p50_and_p95() -> None:
    latency = parse_spec({"mock": {"latency": {"firstTokenMs": {"p50": 400, "p95": 1200}}}})
    rng = random.Random(0)
    samples = sorted(first_token_seconds(latency.mock.latency, rng) for _ in range(4000))
    assert statistics.median(samples) == pytest.approx(0.4, rel=0.08)
    assert samples[int(0.95 * len(samples))] == pytest.approx(1.2, rel=0.12)


async def test_latency_profile_slows_the_answer(start_sidecar: StartSidecar) -> None:
    spec = {"mock": {"latency": {"firstTokenMs": {"p50": 300, "p95": 300},
                                 "tokensPerSecond": 1000}}}  # fmt: skip
    client = openai_client(await start_sidecar(spec))
    started = time.monotonic()
    await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert time.monotonic() - started >= 0.3


async def test_responses_stream_cut_raises(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(faulty("stream_cut")))
    stream = await client.responses.create(model="gpt-4o-mini", input="Write a tweet", stream=True)
    kinds = []
    with pytest.raises(openai.APIError):
        async for event in stream:
            kinds.append(event.type)
    assert "response.output_text.delta" in kinds
    assert "response.completed" not in kinds


async def test_gemini_stream_cut_raises(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(faulty("stream_cut"))
    received = ""
    async with gemini_client(sidecar).aio as client:
        with pytest.raises(genai_errors.APIError) as caught:
            async for chunk in await client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Write a tweet"
            ):
                received += chunk.text or ""
    assert received
    assert caught.value.code == 500


async def test_a_fallback_mock_never_injects_faults(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(
        fake_openai,
        fallback=["openai-primary", "mock"],
        retry={"maxAttempts": 1},
        mock={"seed": 1, "errors": {"rate": 1.0},
              "latency": {"firstTokenMs": {"p50": 5000, "p95": 5000}}},
    )  # fmt: skip
    fake_openai.faults.append(Fault(status=500))
    client = openai_client(await start_sidecar(spec))
    started = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
    assert raw.headers["x-llm-backend"] == "mock"
    assert raw.parse().choices[0].message.content
    assert time.monotonic() - started < 4, "no simulated latency on the fallback either"


def test_a_stream_paces_its_tokens_per_second() -> None:
    doc = {"mock": {"latency": {"firstTokenMs": {"p50": 200, "p95": 200}, "tokensPerSecond": 50}}}
    spec, dialect = parse_spec(doc).mock, _DIALECTS["openai.chat"]
    reply = answer("openai.chat", dialect.parse(_raw(_chat(1) | {"stream": True})), spec)
    assert reply.delays[0] == pytest.approx(0.2)
    writing = sum(reply.delays[1:])
    assert writing == pytest.approx(reply.usage.output_tokens / 50)
