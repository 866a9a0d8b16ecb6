"""Record real answers into a cassette, then replay them with no provider and no key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import yaml

from proxy.mock.cassette import Cassette, Chunk, Interaction, dumps, loads
from tests.conftest import APP_KEY, StartSidecar, anthropic_client, openai_client, real_spec
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI

STREAM = {
    "model": "gpt-4o-mini",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "Write a tweet about socks"}],
}


def replaying(cassette: Path, **options: Any) -> dict[str, Any]:
    return {
        "mock": {"replay": {"cassette": str(cassette), "mode": "replay"} | options},
        "traffic": {"realWeight": 0},
    }


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


async def written(cassette: Path, interactions: int) -> str:
    """The cassette once it holds `interactions` (it is written as the response ends)."""
    for _ in range(200):
        text = await asyncio.to_thread(_read, cassette)
        if text and len(yaml.safe_load(text)["interactions"]) >= interactions:
            return text
        await asyncio.sleep(0.01)
    raise AssertionError(f"{cassette} never held {interactions} interaction(s)")


async def post(port: int, body: dict[str, Any], path: str = "/v1/chat/completions") -> bytes:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}{path}",
            json=body,
            headers={"Authorization": f"Bearer {APP_KEY}"},
        ) as response,
    ):
        assert response.status == 200
        return await response.read()


async def test_recorded_stream_replays_byte_for_byte(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassettes" / "chat.yaml"
    recorder = await start_sidecar(
        real_spec(fake_openai, mock={"replay": {"cassette": str(cassette), "mode": "record"}})
    )
    original = await post(recorder.data_port, STREAM)
    assert b"Real " in original

    text = await written(cassette, interactions=1)
    for secret in ("sk-real-openai-test-0000000000", APP_KEY, "authorization", "Bearer"):
        assert secret not in text, f"{secret!r} leaked into the cassette"
    recorded = yaml.safe_load(text)["interactions"]
    assert len(recorded) == 1
    assert recorded[0]["request"]["path"] == "/v1/chat/completions"
    assert len(recorded[0]["response"]["chunks"]) >= 1

    await fake_openai.stop()  # the provider is gone: only the cassette can answer
    player = await start_sidecar(replaying(cassette))
    assert await post(player.data_port, STREAM) == original


async def test_sdk_reads_a_replayed_stream_and_body(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    cassette = tmp_path / "messages.yaml"
    spec = real_spec(
        anthropic_fake=fake_anthropic,
        mock={"replay": {"cassette": str(cassette), "mode": "record"}},
    )
    real = anthropic_client(await start_sidecar(spec))
    ask: dict[str, Any] = {
        "model": "claude-sonnet-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "A slogan for tea"}],
    }
    recorded = await real.messages.create(**ask)
    async with real.messages.stream(**ask) as stream:
        recorded_stream = await stream.get_final_message()
    await written(cassette, interactions=2)

    player = anthropic_client(await start_sidecar(replaying(cassette, timing="none")))
    raw = await player.messages.with_raw_response.create(**ask)
    assert raw.headers["x-llm-backend"] == "mock"
    assert (await raw.parse()).model_dump() == recorded.model_dump()
    async with player.messages.stream(**ask) as stream:
        assert (await stream.get_final_message()).model_dump() == recorded_stream.model_dump()


async def test_a_miss_falls_back_to_the_mock_or_is_a_404(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    cassette = tmp_path / "empty.yaml"
    cassette.write_text("version: 1\ninteractions: []\n")
    fallback = openai_client(await start_sidecar(replaying(cassette)))
    completion = await fallback.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )
    assert completion.choices[0].message.content

    strict = openai_client(await start_sidecar(replaying(cassette, onMiss="error")))
    with pytest.raises(openai.NotFoundError) as caught:
        await strict.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    assert "no recording" in caught.value.message
    assert str(cassette) in caught.value.message


async def test_body_subset_matching_and_repeats_in_order(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    def recording(text: str) -> Interaction:
        body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 2}}  # fmt: skip
        return Interaction(
            "POST", "/v1/messages", "claude-sonnet-5",
            {"messages": [{"role": "user", "content": "Pick a colour"}]},
            200, {"content-type": "application/json"}, response_body=json.dumps(body).encode(),
        )  # fmt: skip

    cassette = tmp_path / "colours.yaml"
    cassette.write_text(dumps(Cassette([recording("Blue."), recording("Green.")])))
    spec = replaying(cassette, match=["method", "path", "bodySubset"])
    client = anthropic_client(await start_sidecar(spec))
    answers = [
        (await client.messages.create(
            model="claude-sonnet-5", max_tokens=50, stop_sequences=["END"],
            messages=[{"role": "user", "content": "Pick a colour"}],
        )).content[0].text  # type: ignore[union-attr]
        for _ in range(3)
    ]  # fmt: skip
    assert answers == ["Blue.", "Green.", "Green."]
    strict = anthropic_client(await start_sidecar(replaying(cassette, onMiss="error")))
    with pytest.raises(anthropic.NotFoundError):
        await strict.messages.create(
            model="claude-sonnet-5", max_tokens=50,
            messages=[{"role": "user", "content": "Pick a number"}],
        )  # fmt: skip


def test_cassette_round_trip_keeps_every_byte() -> None:
    split_utf8 = "é".encode()[:1]
    original = Cassette(
        [
            Interaction(
                "POST", "/v1/chat/completions", "gpt-4o", {"a": [1, "ü"]}, 200,
                {"content-type": "text/event-stream"},
                chunks=(Chunk(0.25, b"data: {\"x\": \"\\u00e9 \xc3\xa9\"}\n\n"),
                        Chunk(0.01, split_utf8), Chunk(0.0, b"\r\n: ping\r\n\r\n")),
            ),
            Interaction("POST", "/v1/messages", "m", None, 529, {}, response_body=b"{}"),
        ]
    )  # fmt: skip
    assert loads(dumps(original)) == original
