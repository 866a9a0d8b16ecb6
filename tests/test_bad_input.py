"""Bad input gets a 4xx in the client's own dialect, and nothing crashes the sidecar."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import openai
import pytest

from proxy.server.serve import Sidecar
from tests.conftest import StartSidecar, anthropic_client, openai_client


@pytest.fixture
async def sidecar(start_sidecar: StartSidecar) -> Sidecar:
    return await start_sidecar({"traffic": {"realWeight": 0}}, max_body_bytes=4096)


@pytest.fixture
async def http(sidecar: Sidecar) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with aiohttp.ClientSession() as session:
        yield session, f"http://127.0.0.1:{sidecar.data_port}"


async def test_malformed_json_openai_shape(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.post(f"{base}/v1/chat/completions", data=b"{not json") as response:
        body = await response.json()
    assert response.status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]


async def test_malformed_json_anthropic_shape(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.post(f"{base}/v1/messages", data=b"[1, 2]") as response:
        body = await response.json()
    assert response.status == 400
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


async def test_missing_fields_raise_typed_sdk_errors(sidecar: Sidecar) -> None:
    with pytest.raises(openai.BadRequestError, match="'messages' is required"):
        await openai_client(sidecar).chat.completions.create(model="gpt-4o", messages=[])
    client = anthropic_client(sidecar)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        await client.messages.create(
            model="claude-sonnet-5", messages=[{"role": "user", "content": "hi"}], max_tokens=0
        )


async def test_body_over_the_limit_gets_413_in_dialect(sidecar: Sidecar) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        await openai_client(sidecar).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x" * 10_000}]
        )
    assert raised.value.status_code == 413
    assert "--max-body-bytes" in raised.value.message
    with pytest.raises(anthropic.APIStatusError) as too_large:
        await anthropic_client(sidecar).messages.create(
            model="claude-sonnet-5",
            max_tokens=5,
            messages=[{"role": "user", "content": "x" * 9000}],
        )
    assert too_large.value.status_code == 413
    assert too_large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "headers", "shape"),
    [
        ("/v1/models", {}, "openai"),
        ("/v1/complete", {"anthropic-version": "2023-06-01"}, "anthropic"),
        ("/nope", {"x-api-key": "k"}, "anthropic"),
    ],
)
async def test_unknown_paths_404_in_the_guessed_dialect(
    http: tuple[aiohttp.ClientSession, str], path: str, headers: dict[str, str], shape: str
) -> None:
    session, base = http
    async with session.get(base + path, headers=headers) as response:
        body = await response.json()
    assert response.status == 404
    if shape == "openai":
        assert "llm-rollout serves no GET" in body["error"]["message"]
    else:
        assert body["type"] == "error"
        assert body["error"]["type"] == "not_found_error"


async def test_wrong_method_on_a_served_path(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.get(f"{base}/v1/chat/completions") as response:
        body = await response.json()
    assert response.status in (404, 405)
    assert "error" in body


async def test_sidecar_still_serves_after_bad_input(
    http: tuple[aiohttp.ClientSession, str], sidecar: Sidecar
) -> None:
    session, base = http
    for junk in (b"", b"\xff\xfe", b"null", b'{"model": 5}', b'{"model":"m","messages":"x"}'):
        async with session.post(f"{base}/v1/chat/completions", data=junk) as response:
            assert response.status == 400
    completion = await openai_client(sidecar).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "still alive?"}]
    )
    assert completion.choices[0].message.content
