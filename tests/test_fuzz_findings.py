"""Fuzz findings kept as regression tests (issue 17): each was a 500 before its fix."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from proxy.server.serve import Sidecar
from tests.conftest import StartSidecar


@pytest.fixture
async def sidecar(start_sidecar: StartSidecar) -> Sidecar:
    return await start_sidecar({"traffic": {"realWeight": 0}})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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


async def test_optional_property_that_requires_itself_is_left_out(
    sidecar: Sidecar, http: aiohttp.ClientSession
) -> None:
    """Found by `make fuzz`: an optional property whose schema requires itself (a required
    `$ref` cycle the answer avoids by leaving the property out) recursed until a 500."""
    looping = {
        "type": "object",
        "properties": {"self": {"$ref": "#/$defs/A"}},
        "required": ["self"],
        "additionalProperties": False,
    }
    schema = {
        "$defs": {"A": looping},
        "type": "object",
        "properties": {
            "maybe": {"$ref": "#/$defs/A"},
            "many": {"type": "array", "items": {"$ref": "#/$defs/A"}},
            "either": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "string"}]},
        },
        "required": ["either"],
        "additionalProperties": False,
    }
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Write a tweet"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    url = f"http://127.0.0.1:{sidecar.data_port}/v1/chat/completions"
    for _ in range(5):  # the optional parts are drawn at random: several draws
        async with http.post(url, json=body) as response:
            answer = await response.json()
        assert response.status == 200, answer
        content = json.loads(answer["choices"][0]["message"]["content"])
        assert isinstance(content["either"], str)
        assert "maybe" not in content
        assert content.get("many", []) == []
