"""The official SDKs through the sidecar to fake providers: passthrough, keys, errors, streams."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest

from tests.conftest import APP_KEY, StartSidecar, anthropic_client, openai_client, real_spec
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Hello"}]


async def test_openai_chat_passthrough_swaps_the_key(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai)))
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Real OpenAI answer."
    assert raw.headers["x-llm-backend"] == "openai-primary"
    assert raw.headers["x-request-id"].startswith("req_fake"), "provider's request id passed back"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4999"
    seen = fake_openai.requests[-1]
    assert seen.headers["Authorization"] == "Bearer sk-real-openai"
    assert APP_KEY not in str(seen.headers), "the app's key never reaches the provider"
    assert seen.json["messages"] == ASK, "the body is forwarded unchanged"


async def test_openai_stream_relays_chunks_and_reads_usage(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Real OpenAI answer."
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 11
    tokens = sidecar.runtime.metrics.tokens
    output = tokens.labels("chat", "openai", "gpt-4o-mini", "output", "openai-primary")
    assert output._sum.get() == 4, "usage read from the stream is in gen_ai_client_token_usage"
    first = sidecar.runtime.metrics.first_chunk.labels("openai.chat", "openai-primary")
    assert first._sum.get() > 0, "time to first chunk is recorded for streams"


async def test_anthropic_passthrough_and_stream(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    client = anthropic_client(await start_sidecar(real_spec(anthropic_fake=fake_anthropic)))
    message = await client.messages.create(model="claude-sonnet-5", max_tokens=64, messages=ASK)
    assert message.content[0].text == "Real Anthropic answer."  # type: ignore[union-attr]
    assert fake_anthropic.requests[-1].headers["x-api-key"] == "sk-ant-real"
    assert "anthropic-version" in fake_anthropic.requests[-1].headers, "SDK headers forwarded"
    async with client.messages.stream(
        model="claude-sonnet-5", max_tokens=64, messages=ASK
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Real Anthropic answer."
    assert final.usage.output_tokens == 5


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_openai_provider_errors_reach_the_sdk_typed(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, status: int, error: type[Exception]
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai)))
    fake_openai.faults.append(Fault(status=status, headers={"retry-after": "7"}))
    with pytest.raises(error) as raised:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert raised.value.response.headers["retry-after"] == "7"  # type: ignore[attr-defined]
    assert f"scripted {status}" in str(raised.value)


async def test_anthropic_overloaded_reaches_the_sdk(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    client = anthropic_client(await start_sidecar(real_spec(anthropic_fake=fake_anthropic)))
    fake_anthropic.faults.extend(Fault(status=529) for _ in range(3))  # retry.maxAttempts: 3
    with pytest.raises(anthropic.APIStatusError) as raised:
        await client.messages.create(model="claude-sonnet-5", max_tokens=64, messages=ASK)
    assert raised.value.status_code == 529
    assert raised.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(fake_anthropic.requests) == 3, "the sidecar retried up to retry.maxAttempts"
    assert raised.value.response.headers["x-should-retry"] == "false", "no SDK retries on top"


async def test_openai_stream_cut_midway_raises_in_the_sdk(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    fake_openai.faults.append(Fault(cut_after_chunks=2))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    received = []
    with pytest.raises(openai.APIError, match="before completion"):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2, "what arrived before the cut was relayed"
    cuts = sidecar.runtime.metrics.stream_errors.labels("openai.chat", "openai-primary", "cut")
    assert cuts._value.get() == 1


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        (Fault(cut_after_chunks=4), "before completion"),  # the sidecar's own error event
        (Fault(error_after_chunks=4), "Overloaded"),  # the provider's, relayed as it came
    ],
)
async def test_anthropic_stream_failing_midway_raises_in_the_sdk(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic, fault: Fault, raised: str
) -> None:
    client = anthropic_client(await start_sidecar(real_spec(anthropic_fake=fake_anthropic)))
    fake_anthropic.faults.append(fault)
    with pytest.raises(anthropic.APIStatusError, match=raised):
        async with client.messages.stream(
            model="claude-sonnet-5", max_tokens=64, messages=ASK
        ) as stream:
            async for _ in stream.text_stream:
                pass


async def test_unreachable_provider_gets_a_dialect_502(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = real_spec(fake_openai)
    await fake_openai.stop()  # nothing listens on its port any more
    client = openai_client(await start_sidecar(spec))
    with pytest.raises(openai.APIStatusError) as raised:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert raised.value.status_code == 502
    assert "openai-primary" in str(raised.value)
    assert "unreachable" in str(raised.value)


async def test_missing_key_is_reported_without_calling_the_provider(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai)))
    monkeypatch.delenv("TEST_OPENAI_KEY")
    with pytest.raises(openai.APIStatusError, match="TEST_OPENAI_KEY is not set"):
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert fake_openai.requests == []


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_provider_error_event_midstream_is_relayed_once_and_counted(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    provider: str,
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, fake_anthropic))
    if provider == "openai":
        fake_openai.faults.append(Fault(error_after_chunks=2))
        path, marker, dialect, backend = (
            "/v1/chat/completions",
            '{"error"',
            "openai.chat",
            ("openai-primary"),
        )
        body = {"model": "gpt-4o-mini", "messages": ASK, "stream": True}
    else:
        fake_anthropic.faults.append(Fault(error_after_chunks=4))
        path, marker, dialect, backend = (
            "/v1/messages",
            "event: error",
            "anthropic.messages",
            ("anthropic-primary"),
        )
        body = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": ASK, "stream": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{sidecar.data_port}{path}", json=body,
                  headers={"anthropic-version": "2023-06-01"}) as response,
    ):  # fmt: skip
        text = (await response.read()).decode()
    assert text.count(marker) == 1, "the provider's error reaches the client once, unaltered"
    assert "before completion" not in text, "no second, sidecar-made error is appended"
    errors = sidecar.runtime.metrics.stream_errors.labels(dialect, backend, "provider-error")
    assert errors._value.get() == 1


async def test_a_stream_without_include_usage_reaches_the_app_byte_for_byte(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    """The sidecar asks for usage on the app's behalf and takes out what that added."""
    sidecar = await start_sidecar(real_spec(fake_openai))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
            "stream": True}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        direct = await (
            await http.post(
                f"http://127.0.0.1:{fake_openai.port}/v1/chat/completions",
                json=body,
                headers={"Authorization": "Bearer sk-real-openai"},
            )
        ).read()
        through = await (await http.post(
            f"http://127.0.0.1:{sidecar.data_port}/v1/chat/completions", json=body
        )).read()  # fmt: skip
    assert b'"usage"' not in direct
    assert through == direct
    assert fake_openai.requests[-1].json["stream_options"] == {"include_usage": True}
    usage = sidecar.runtime.metrics.tokens.labels(
        "chat", "openai", "gpt-4o-mini", "input", "openai-primary"
    )
    assert usage._sum.get() == 11, "usage read from the chunk the app never saw"


def test_added_usage_is_taken_out_whatever_the_chunking() -> None:
    """Events split anywhere across network chunks come out whole and as the app asked."""
    from proxy.dialects.openai_chat import AddedUsage

    stream = (
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a \\"usage\\": null"}}],'
        b'"usage":null}\n\n'
        b'data: {"id":"c","choices":[],"prompt_filter_results":[],"usage":null}\n\n'
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1}}\n\n'
        b"data: [DONE]\n\n"
    )
    expected = (
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a \\"usage\\": null"}}]}\n\n'
        b'data: {"id":"c","choices":[],"prompt_filter_results":[]}\n\n'
        b"data: [DONE]\n\n"
    )
    for size in (1, 2, 7, 64, len(stream)):
        strip = AddedUsage()
        out = b"".join(strip.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        assert out + strip.close() == expected, size
