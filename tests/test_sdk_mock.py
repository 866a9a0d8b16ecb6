"""The official SDKs against a sidecar in mock mode: every call parses, streams included."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.conftest import StartSidecar, anthropic_client, openai_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

MOCK_ONLY = {"mock": {"seed": 7}, "traffic": {"realWeight": 0}}


async def test_openai_chat_create(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    client = openai_client(sidecar)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Write a tagline for shoes"}]
    )
    completion = raw.parse()
    assert raw.headers["x-llm-backend"] == "mock"
    assert completion.choices[0].message.role == "assistant"
    assert "shoes" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.model == "gpt-4o-mini"


async def test_openai_chat_stream_with_usage(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    client = openai_client(sidecar)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Describe a running shoe"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert "running shoe" in text
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_mock_is_deterministic_for_a_seed(start_sidecar: StartSidecar) -> None:
    first = openai_client(await start_sidecar(MOCK_ONLY))
    second = openai_client(await start_sidecar(MOCK_ONLY))
    other_seed = openai_client(await start_sidecar({"mock": {"seed": 8}}))
    ask = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summer sale email"}]}
    answers = [
        (await c.chat.completions.create(**ask)).choices[0].message.content  # type: ignore[call-overload]
        for c in (first, second, other_seed)
    ]
    assert answers[0] == answers[1]
    assert answers[0] != answers[2]


async def test_anthropic_messages_create(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    client = anthropic_client(sidecar)
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-5",
        max_tokens=200,
        messages=[{"role": "user", "content": "Write a product description for a lamp"}],
    )
    message = await raw.parse()
    assert raw.headers["x-llm-backend"] == "mock"
    assert message.content[0].type == "text"
    assert "lamp" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


async def test_anthropic_messages_stream(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    client = anthropic_client(sidecar)
    async with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=200,
        messages=[{"role": "user", "content": "Write about a garden hose"}],
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) > 3, "the mock streams word by word"
    assert "".join(pieces) == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens > 0


async def test_max_tokens_bounds_the_mock_answer(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    message = await client.messages.create(
        model="claude-sonnet-5",
        max_tokens=3,
        messages=[{"role": "user", "content": "Write a very long essay"}],
    )
    assert len(message.content[0].text.split()) <= 3  # type: ignore[union-attr]


@pytest.mark.parametrize("real", [False, True])
async def test_an_app_hanging_up_mid_stream_is_no_server_error(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    real: bool,
) -> None:
    """A client that leaves mid-stream is normal: no 'Error handling request', no stack."""
    spec = real_spec(fake_openai, weight=100) if real else {"traffic": {"realWeight": 0}}
    spec["mock"] = {"latency": {"tokensPerSecond": 20}}
    if real:
        fake_openai.faults.append(Fault(stall_after_chunks=2, stall_seconds=0.5))
    sidecar = await start_sidecar(spec)
    ask = [{"role": "user", "content": "Write a long blog post about tea"}]
    body = {"model": "gpt-4o-mini", "stream": True, "messages": ask}
    url = f"http://127.0.0.1:{sidecar.data_port}/v1/chat/completions"
    for _ in range(3):
        async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
            await response.content.readany()
        await asyncio.sleep(0.6)  # the sidecar writes on into the closed connection
    ours = ("aiohttp", "llm_rollout")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(ours)]
    assert not errors, caplog.text
    completion = await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
