"""google-genai through the sidecar: generate_content, streams, schemas, keys, errors."""

from __future__ import annotations

import json

import aiohttp
import pytest
from google.genai import errors, types
from pydantic import BaseModel

from tests.conftest import APP_KEY, NO_RETRY, StartSidecar, gemini_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini

MOCK_ONLY = {"mock": {"seed": 7}, "traffic": {"realWeight": 0}}
MODEL = "gemini-2.5-flash"


class Recipe(BaseModel):
    title: str
    minutes: int


async def test_mock_generate_content(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    async with gemini_client(sidecar).aio as client:
        response = await client.models.generate_content(
            model=MODEL, contents="Write a slogan for garden gloves"
        )
    assert response.text is not None
    assert "garden gloves" in response.text
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == MODEL
    usage = response.usage_metadata
    assert usage is not None
    assert usage.candidates_token_count
    assert usage.total_token_count == (usage.prompt_token_count or 0) + usage.candidates_token_count
    assert response.sdk_http_response is not None
    assert response.sdk_http_response.headers is not None
    assert response.sdk_http_response.headers["x-llm-backend"] == "mock"
    tokens = sidecar.runtime.metrics.tokens
    output = tokens.labels("generate_content", "gcp.gemini", MODEL, "output", "mock")
    assert output._sum.get() == usage.candidates_token_count


async def test_mock_stream(start_sidecar: StartSidecar) -> None:
    async with gemini_client(await start_sidecar(MOCK_ONLY)).aio as client:
        chunks = [
            chunk
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents="Describe a watering can"
            )
        ]
    assert len(chunks) > 1, "streamed in pieces"
    text = "".join(chunk.text or "" for chunk in chunks)
    assert "watering can" in text
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    assert last.usage_metadata.candidates_token_count


async def test_mock_bad_body_gets_a_google_error(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    url = f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/{MODEL}:generateContent"
    async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["code"] == 400
    assert "contents" in body["error"]["message"]


async def test_unserved_gemini_method_gets_a_google_404(start_sidecar: StartSidecar) -> None:
    async with gemini_client(await start_sidecar(MOCK_ONLY)).aio as client:
        with pytest.raises(errors.ClientError) as raised:
            await client.models.count_tokens(model=MODEL, contents="hi")
    assert raised.value.code == 404
    assert raised.value.status == "NOT_FOUND"


async def test_real_passthrough_swaps_the_key(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini))
    async with gemini_client(sidecar).aio as client:
        response = await client.models.generate_content(model=MODEL, contents="Hello")
    assert response.text == "Real Gemini answer."
    assert response.sdk_http_response is not None
    assert response.sdk_http_response.headers is not None
    assert response.sdk_http_response.headers["x-llm-backend"] == "gemini-primary"
    seen = fake_gemini.requests[-1]
    assert seen.path == f"/v1/models/{MODEL}:generateContent", "the SDK's path, unchanged"
    assert seen.headers["x-goog-api-key"] == "real-gemini-key"
    assert APP_KEY not in str(seen.headers)
    assert seen.json["contents"][0]["parts"][0]["text"] == "Hello"
    tokens = sidecar.runtime.metrics.tokens
    labels = ("generate_content", "gcp.gemini", MODEL)
    assert tokens.labels(*labels, "input", "gemini-primary")._sum.get() == 9
    assert tokens.labels(*labels, "output", "gemini-primary")._sum.get() == 6, "thoughts included"


async def test_real_key_in_query_is_dropped(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini))
    url = f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/{MODEL}:generateContent"
    ask = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, params={"key": APP_KEY}, json=ask) as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "Real Gemini answer."
    seen = fake_gemini.requests[-1]
    assert "key" not in seen.query
    assert seen.headers["x-goog-api-key"] == "real-gemini-key"


async def test_real_stream_relays_chunks_and_reads_usage(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini))
    async with gemini_client(sidecar).aio as client:
        stream = await client.models.generate_content_stream(model=MODEL, contents="Hello")
        chunks = [chunk async for chunk in stream]
    assert "".join(c.text or "" for c in chunks) == "Real Gemini answer."
    assert fake_gemini.requests[-1].query == {"alt": "sse"}
    tokens = sidecar.runtime.metrics.tokens
    output = tokens.labels("generate_content", "gcp.gemini", MODEL, "output", "gemini-primary")
    assert output._sum.get() == 6


async def test_real_response_schema(start_sidecar: StartSidecar, fake_gemini: FakeGemini) -> None:
    fake_gemini.json_answer = json.dumps({"title": "Pea soup", "minutes": 25})
    async with gemini_client(await start_sidecar(real_spec(gemini_fake=fake_gemini))).aio as c:
        response = await c.models.generate_content(
            model=MODEL,
            contents="A quick recipe",
            config=types.GenerateContentConfig(
                response_mime_type="application/json", response_schema=Recipe
            ),
        )
    assert response.parsed == Recipe(title="Pea soup", minutes=25)
    sent = fake_gemini.requests[-1].json["generationConfig"]
    assert sent["responseMimeType"] == "application/json"
    assert "responseSchema" in sent or "responseJsonSchema" in sent


@pytest.mark.parametrize(
    ("status", "error", "google_status"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (401, errors.ClientError, "UNAUTHENTICATED"),
        (404, errors.ClientError, "NOT_FOUND"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
async def test_real_errors_reach_the_sdk_typed(
    start_sidecar: StartSidecar,
    fake_gemini: FakeGemini,
    status: int,
    error: type[errors.APIError],
    google_status: str,
) -> None:
    fake_gemini.faults.append(Fault(status=status))
    spec = real_spec(gemini_fake=fake_gemini, **NO_RETRY)
    async with gemini_client(await start_sidecar(spec)).aio as c:
        with pytest.raises(error) as raised:
            await c.models.generate_content(model=MODEL, contents="Hello")
    assert raised.value.code == status
    assert raised.value.status == google_status
    assert f"scripted {status}" in str(raised.value)


async def test_real_stream_cut_midway_raises_in_the_sdk(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini))
    fake_gemini.faults.append(Fault(cut_after_chunks=2))
    received = []
    async with gemini_client(sidecar).aio as client:
        stream = await client.models.generate_content_stream(model=MODEL, contents="Hello")
        with pytest.raises(errors.ServerError, match="before completion") as raised:
            async for chunk in stream:
                received.append(chunk.text)
    assert raised.value.code == 502
    assert len(received) == 2, "what arrived before the cut was relayed"
    cuts = sidecar.runtime.metrics.stream_errors.labels(
        "gemini.generate_content", "gemini-primary", "cut"
    )
    assert cuts._value.get() == 1


async def test_mock_response_schema_gives_valid_json(start_sidecar: StartSidecar) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Recipe
    )
    async with gemini_client(await start_sidecar(MOCK_ONLY)).aio as client:
        response = await client.models.generate_content(
            model=MODEL, contents="A quick recipe", config=config
        )
        chunks = [
            chunk
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents="A quick recipe", config=config
            )
        ]
    assert isinstance(response.parsed, Recipe)
    streamed = "".join(chunk.text or "" for chunk in chunks)
    assert Recipe.model_validate_json(streamed)


async def test_mock_function_call(start_sidecar: StartSidecar) -> None:
    weather = types.FunctionDeclaration(
        name="get_weather",
        description="Weather in a city",
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={"city": types.Schema(type=types.Type.STRING)},
            required=["city"],
        ),
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    async with gemini_client(await start_sidecar(MOCK_ONLY)).aio as client:
        response = await client.models.generate_content(
            model=MODEL, contents="Weather in Oslo?", config=config
        )
        chunks = [
            chunk
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents="Weather in Oslo?", config=config
            )
        ]
    assert response.function_calls is not None
    assert response.function_calls[0].name == "get_weather"
    assert isinstance((response.function_calls[0].args or {})["city"], str)
    assert chunks[-1].function_calls is not None
    assert chunks[-1].function_calls[0].name == "get_weather"


async def test_mock_stream_without_alt_sse_is_one_json_array(start_sidecar: StartSidecar) -> None:
    """The REST default (no ``?alt=sse``) answers the chunks as one JSON array, as Gemini does."""
    sidecar = await start_sidecar(MOCK_ONLY)
    body = {"contents": [{"role": "user", "parts": [{"text": "Describe a watering can"}]}]}
    base = f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/{MODEL}"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}:streamGenerateContent", json=body) as plain:
            assert plain.status == 200
            assert plain.content_type == "application/json"
            chunks = json.loads(await plain.read())
        async with session.post(f"{base}:streamGenerateContent?alt=sse", json=body) as sse:
            assert sse.content_type == "text/event-stream"
            events = [
                json.loads(line.removeprefix(b"data: "))
                for line in (await sse.read()).splitlines()
                if line.startswith(b"data: ")
            ]
    assert isinstance(chunks, list)
    assert len(chunks) > 1
    assert chunks == events, "the same chunks, framed as an array instead of events"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0
