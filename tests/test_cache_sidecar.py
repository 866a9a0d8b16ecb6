"""The response cache through the SDKs: repeated deterministic requests answered locally."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from google.genai import types

from tests.conftest import (
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
    real_spec,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Describe the blue mug"}]
CACHE: dict[str, Any] = {"enabled": True}


async def test_openai_repeat_is_a_hit_byte_equal_and_costs_nothing(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, cache=CACHE))
    client = openai_client(sidecar)
    first = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    second = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    assert first.headers["x-llm-cache"] == "miss"
    assert second.headers["x-llm-cache"] == "hit"
    assert second.headers["x-llm-backend"] == "openai-primary", "a hit answers as its arm"
    assert int(second.headers["age"]) >= 0
    assert second.http_response.content == first.http_response.content
    assert second.parse().choices[0].message.content == "Real OpenAI answer."
    assert len(fake_openai.requests) == 1, "the provider was called once"
    metrics = sidecar.runtime.cache
    assert metrics.requests.labels("hit")._value.get() == 1
    assert metrics.saved_usd._value.get() > 0, "the hit is counted as saved spend"
    assert metrics.bytes._value.get() > len(first.http_response.content)


async def test_non_deterministic_requests_are_not_cached(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, cache=CACHE)))
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0.7
        )
        assert raw.headers["x-llm-cache"] == "bypass"
    assert len(fake_openai.requests) == 2


async def test_no_cache_refreshes_and_no_store_bypasses(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, cache=CACHE)))

    async def ask(**headers: str) -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, seed=7, extra_headers=headers
        )
        return raw.headers["x-llm-cache"]

    assert await ask() == "miss"
    assert await ask(**{"Cache-Control": "no-cache"}) == "miss"
    assert await ask(**{"Cache-Control": "no-store"}) == "bypass"
    assert await ask(**{"x-llm-cache": "skip"}) == "bypass"
    assert len(fake_openai.requests) == 4, "refresh and bypass all reached the provider"
    assert await ask() == "hit"


async def test_tenants_do_not_share_entries_unless_scope_is_rollout(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    tenants = {"header": "x-tenant-id"}
    for scope, expected in (("tenant", "miss"), ("rollout", "hit")):
        spec = real_spec(fake_openai, cache={"enabled": True, "scope": scope}, tenants=tenants)
        client = openai_client(await start_sidecar(spec))
        results = []
        for tenant in ("acme", "globex"):
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=ASK, temperature=0,
                extra_headers={"x-tenant-id": tenant},
            )  # fmt: skip
            results.append(raw.headers["x-llm-cache"])
        assert results == ["miss", expected], scope


async def test_mock_answers_and_errors_are_never_stored(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, weight=0, cache=CACHE)))
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0
        )
        assert raw.headers["x-llm-backend"] == "mock"
        assert "x-llm-cache" not in raw.headers, "the mock arm never touches the cache"


async def test_anthropic_and_gemini_repeats_are_hits(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(
        real_spec(anthropic_fake=fake_anthropic, gemini_fake=fake_gemini, cache=CACHE)
    )
    claude = anthropic_client(sidecar)
    bodies, results = [], []
    for _ in range(2):
        raw = await claude.messages.with_raw_response.create(
            model="claude-sonnet-5", max_tokens=64, messages=ASK, extra_body={"temperature": 0}
        )
        bodies.append(raw.http_response.content)
        results.append(raw.headers["x-llm-cache"])
    assert results == ["miss", "hit"]
    assert bodies[0] == bodies[1]
    assert len(fake_anthropic.requests) == 1
    async with gemini_client(sidecar).aio as gemini:
        texts = []
        for _ in range(2):
            answer = await gemini.models.generate_content(
                model="gemini-2.5-flash", contents="Describe the blue mug",
                config=types.GenerateContentConfig(temperature=0),
            )  # fmt: skip
            texts.append(answer.text)
    assert texts[0] == texts[1]
    assert len(fake_gemini.requests) == 1, "the second Gemini request was a hit"


async def test_streams_replay_byte_equal_in_every_dialect(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    fake_gemini: FakeGemini,
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, fake_anthropic, gemini_fake=fake_gemini,
                                            cache=CACHE))  # fmt: skip
    client = openai_client(sidecar)
    raws, texts = [], []
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0, stream=True
        )
        raws.append(raw.headers["x-llm-cache"])
        texts.append("".join([c.choices[0].delta.content or "" async for c in raw.parse()
                              if c.choices]))  # fmt: skip
    assert raws == ["miss", "hit"]
    assert texts == ["Real OpenAI answer."] * 2
    assert len(fake_openai.requests) == 1, "the stream was replayed, not re-requested"
    plain = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    assert plain.headers["x-llm-cache"] == "miss", "a plain request is keyed apart from a stream"

    claude = anthropic_client(sidecar)
    finals = []
    for _ in range(2):
        async with claude.messages.stream(
            model="claude-sonnet-5", max_tokens=64, messages=ASK,  # type: ignore[arg-type]
            extra_body={"temperature": 0},
        ) as stream:  # fmt: skip
            text = "".join([t async for t in stream.text_stream])
            finals.append((text, (await stream.get_final_message()).usage.output_tokens))
    assert finals == [("Real Anthropic answer.", 5)] * 2
    assert len(fake_anthropic.requests) == 1

    async with gemini_client(sidecar).aio as gemini:
        streamed = []
        for _ in range(2):
            chunks = await gemini.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Describe the blue mug",
                config=types.GenerateContentConfig(temperature=0),
            )  # fmt: skip
            streamed.append("".join([c.text or "" async for c in chunks]))
    assert streamed[0] == streamed[1] != ""
    assert len(fake_gemini.requests) == 1


async def test_a_cut_stream_is_not_stored(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, cache=CACHE)))
    fake_openai.faults.append(Fault(cut_after_chunks=2))
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, temperature=0, stream=True
    )
    with pytest.raises(openai.APIError, match="before completion"):
        async for _ in stream:
            pass
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0, stream=True
    )
    assert raw.headers["x-llm-cache"] == "miss", "the cut stream was not kept"


async def test_admin_flush_empties_the_cache(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, cache=CACHE))
    client = openai_client(sidecar)

    async def ask() -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0
        )
        return raw.headers["x-llm-cache"]

    assert [await ask(), await ask()] == ["miss", "hit"]
    url = f"http://127.0.0.1:{sidecar.admin_port}/cache/flush"
    async with aiohttp.ClientSession() as http, http.post(url) as flushed:
        assert flushed.status == 200
        assert await flushed.json() == {"flushed": 1}
    assert sidecar.runtime.cache.bytes._value.get() == 0
    assert await ask() == "miss"


async def test_responses_api_and_streams_replay_the_first_answer_byte_for_byte(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    """The Responses API (plain and streamed) is cached like chat; a replayed stream is the
    bytes the first client received, in each dialect, not just the same text."""
    sidecar = await start_sidecar(real_spec(fake_openai, fake_anthropic, cache=CACHE))
    client = openai_client(sidecar)
    plain = [
        await client.responses.with_raw_response.create(
            model="gpt-4o-mini", input="Describe the blue mug", temperature=0
        )
        for _ in range(2)
    ]
    assert [r.headers["x-llm-cache"] for r in plain] == ["miss", "hit"]
    assert plain[1].http_response.content == plain[0].http_response.content
    assert plain[1].parse().output_text == "Real OpenAI answer."

    async def streamed(open_stream: Any) -> tuple[str, bytes]:
        async with open_stream() as response:
            return response.headers["x-llm-cache"], b"".join(
                [chunk async for chunk in response.iter_bytes()]
            )

    claude = anthropic_client(sidecar)
    for open_stream in (
        lambda: client.responses.with_streaming_response.create(
            model="gpt-4o-mini", input="Describe the blue mug", temperature=0, stream=True
        ),
        lambda: client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0, stream=True
        ),
        lambda: claude.messages.with_streaming_response.create(
            model="claude-sonnet-5",
            max_tokens=64,
            messages=ASK,  # type: ignore[arg-type]
            stream=True,
            extra_body={"temperature": 0},
        ),
    ):
        (first, sent), (second, replayed) = [await streamed(open_stream) for _ in range(2)]
        assert (first, second) == ("miss", "hit")
        assert replayed == sent, "the replayed stream is the first one's bytes"
        assert b"Real " in sent, "a real answer, not an empty stream"
    assert len(fake_openai.requests) == 3, "one Responses, one Responses stream, one chat stream"
    assert len(fake_anthropic.requests) == 1


async def test_a_gemini_stream_as_events_and_as_one_json_array_are_cached_apart(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    """``?alt=sse`` answers events, no ``alt`` one JSON array: the same body asked both ways
    must never get the other's framing from the cache (here translated from OpenAI)."""
    sidecar = await start_sidecar(real_spec(fake_openai, cache=CACHE))
    url = (f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/gemini-2.5-flash"
           ":streamGenerateContent")  # fmt: skip
    body = {"contents": [{"role": "user", "parts": [{"text": "Describe the blue mug"}]}],
            "generationConfig": {"temperature": 0}}  # fmt: skip
    seen = []
    async with aiohttp.ClientSession() as session:
        for query in ("?alt=sse", "", "", "?alt=sse"):
            async with session.post(url + query, json=body) as response:
                assert response.status == 200
                seen.append((response.headers["x-llm-cache"], response.content_type,
                             await response.read()))  # fmt: skip
    assert [(result, kind) for result, kind, _ in seen] == [
        ("miss", "text/event-stream"),
        ("miss", "application/json"),
        ("hit", "application/json"),
        ("hit", "text/event-stream"),
    ]
    assert seen[2][2] == seen[1][2]
    assert seen[3][2] == seen[0][2]
    chunks = json.loads(seen[2][2])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert len(fake_openai.requests) == 2
