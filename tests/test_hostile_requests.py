"""Issue 17's table: requests that froze, bloated or steered the sidecar now get a fast
4xx in the client's dialect while `/healthz` keeps answering, or reach no path but
their own at the provider."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import openai
import pytest
from google.genai import errors as genai_errors

from proxy.server.serve import Sidecar
from tests.conftest import (
    NO_RETRY,
    StartSidecar,
    gemini_client,
    openai_client,
    real_spec,
)
from tests.fakes.gemini import FakeGemini


@pytest.fixture
async def sidecar(start_sidecar: StartSidecar) -> Sidecar:
    return await start_sidecar({"traffic": {"realWeight": 0}})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def served_while_healthy(
    sidecar: Sidecar, http: aiohttp.ClientSession, call: Awaitable[Any]
) -> Any:
    """Run `call` while probing `/healthz`: every probe must answer well within 100 ms
    plus scheduling noise, and the call itself must finish fast."""
    health = f"http://127.0.0.1:{sidecar.admin_port}/healthz"
    worst = 0.0
    task = asyncio.ensure_future(call)
    started = time.monotonic()
    while not task.done():
        sent = time.monotonic()
        async with http.get(health) as response:
            assert response.status == 200
        worst = max(worst, time.monotonic() - sent)
        await asyncio.sleep(0.01)
    assert worst < 0.25, f"/healthz took {worst:.3f}s while the request was served"
    assert time.monotonic() - started < 5.0
    return await task


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_embeddings_dimensions_over_the_models_width_is_a_400(
    sidecar: Sidecar, http: aiohttp.ClientSession
) -> None:
    before = rss_mb()
    client = openai_client(sidecar)
    call = client.embeddings.create(
        model="text-embedding-3-small", input=["hello"] * 2048, dimensions=100_000_000
    )
    with pytest.raises(openai.BadRequestError, match="'dimensions' must be at most 1536"):
        await served_while_healthy(sidecar, http, call)
    assert rss_mb() - before < 200


async def test_embeddings_limits_name_the_field(sidecar: Sidecar) -> None:
    client = openai_client(sidecar)
    with pytest.raises(openai.BadRequestError, match="at most 2048"):
        await client.embeddings.create(model="text-embedding-3-small", input=["a"] * 2049)
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        await client.embeddings.create(model="text-embedding-ada-002", input="a", dimensions=8)
    answer = await client.embeddings.create(
        model="text-embedding-3-large", input="a", dimensions=3072
    )
    assert len(answer.data[0].embedding) == 3072


async def test_the_largest_allowed_embeddings_answer_leaves_healthz_responsive(
    sidecar: Sidecar, http: aiohttp.ClientSession
) -> None:
    client = openai_client(sidecar)
    call = client.embeddings.create(
        model="text-embedding-3-small", input=["hello"] * 2048, encoding_format="base64"
    )
    answer = await served_while_healthy(sidecar, http, call)
    assert len(answer.data) == 2048


def chat_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "array", "minItems": 10_000_000}, "minItems 10000000 is more than"),
        ({"type": "array", "minItems": 5, "maxItems": 2}, "minItems 5 is greater than maxItems"),
        (
            {
                "type": "object",
                "properties": {"node": {"$ref": "#/$defs/node"}},
                "required": ["node"],
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {"next": {"$ref": "#/$defs/node"}},
                        "required": ["next"],
                    }
                },
            },
            "requires itself",
        ),
        ({"type": "string", "enum": [str(i) for i in range(1001)]}, "more than 1000 enum"),
        (
            {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5001)}},
            "more than 5000 properties",
        ),
    ],
    ids=["huge-minItems", "min-over-max", "required-recursion", "enum", "properties"],
)
async def test_schema_over_limits_or_unsatisfiable_is_a_400(
    sidecar: Sidecar, http: aiohttp.ClientSession, schema: dict[str, Any], says: str
) -> None:
    call = openai_client(sidecar).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        response_format=chat_schema(schema),  # type: ignore[arg-type]
    )
    with pytest.raises(openai.BadRequestError, match=says):
        await served_while_healthy(sidecar, http, call)


async def test_deeply_nested_body_is_a_fast_400_in_dialect(
    sidecar: Sidecar, http: aiohttp.ClientSession
) -> None:
    base = f"http://127.0.0.1:{sidecar.data_port}"
    body = b"[" * 100_000 + b"]" * 100_000
    started = time.monotonic()
    async with http.post(f"{base}/v1/messages", data=body) as response:
        answer = await response.json()
    assert response.status == 400
    assert answer["type"] == "error"
    assert "too deeply" in answer["error"]["message"]
    assert time.monotonic() - started < 2.0


async def test_n_over_the_documented_maximum_is_a_400(sidecar: Sidecar) -> None:
    with pytest.raises(openai.BadRequestError, match="'n' must be between 1 and 128"):
        await openai_client(sidecar).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], n=129
        )


async def test_an_unexpected_failure_answers_in_dialect_with_request_id(
    sidecar: Sidecar, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("proxy.server.data.check_limits", broken)
    base = f"http://127.0.0.1:{sidecar.data_port}"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(
        f"{base}/v1/chat/completions", json=body, headers={"x-request-id": "req-17"}
    ) as response:
        answer = await response.json()
    assert response.status == 500
    assert response.headers["x-request-id"] == "req-17"
    assert "req-17" in answer["error"]["message"]


@pytest.mark.parametrize(
    "model",
    ["x%2F..%2F..%2F..%2Fadmin%3Fa=", "m%3Fkey%3Dstolen", "m%23frag", "..", "m%00x"],
)
async def test_gemini_model_names_cannot_leave_their_path(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini, http: aiohttp.ClientSession, model: str
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini, **NO_RETRY))
    url = f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/{model}:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with http.post(url, json=body) as response:
        answer = await response.json()
    assert 400 <= response.status < 500
    assert "error" in answer
    assert answer["error"]["code"] == response.status
    assert fake_gemini.requests == []


async def test_gemini_query_is_never_re_decoded_into_a_key(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini, http: aiohttp.ClientSession
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini, **NO_RETRY))
    url = (
        f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/gemini-2.5-flash"
        ":streamGenerateContent?alt=sse%26key%3Dinjected&key=apps-own"
    )
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with http.post(url, json=body) as response:
        await response.read()
    (seen,) = fake_gemini.requests
    assert "key" not in seen.query
    assert seen.query["alt"] == "sse&key=injected"
    assert seen.headers["x-goog-api-key"] == "real-gemini-key"


async def test_gemini_sdk_still_works_through_the_raw_path(
    start_sidecar: StartSidecar, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(real_spec(gemini_fake=fake_gemini, **NO_RETRY))
    async with gemini_client(sidecar).aio as client:
        answer = await client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert answer.text
        with pytest.raises(genai_errors.ClientError, match="not a Gemini model id"):
            await client.models.generate_content(model="gemini 2.5", contents="hi")
    assert fake_gemini.requests[0].path.endswith("/models/gemini-2.5-flash:generateContent")
    assert len(fake_gemini.requests) == 1


async def test_stalled_bodies_are_answered_408_and_their_connections_closed(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar({"traffic": {"realWeight": 0}}, body_timeout=0.5)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":'
    )

    async def stall() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", sidecar.data_port)
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=20)  # to EOF: closed
        writer.close()
        return answer

    started = time.monotonic()
    answers = await asyncio.gather(*(stall() for _ in range(50)))
    assert all(a.startswith(b"HTTP/1.1 408") and b"--body-timeout" in a for a in answers)
    assert time.monotonic() - started < 20


async def test_gemini_schema_bound_that_is_not_a_number_is_a_400(
    sidecar: Sidecar, http: aiohttp.ClientSession
) -> None:
    """Found by `make fuzz`: `minItems: ""` was a 500."""
    url = f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/gemini-2.5-flash:generateContent"
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": ""},
        },
    }
    async with http.post(url, json=body) as response:
        answer = await response.json()
    assert response.status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert "'minItems' must be a number" in answer["error"]["message"]
