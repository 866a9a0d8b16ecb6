"""The sidecar's provider key never reaches the app, even when a provider echoes it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from proxy.server.keymask import MASK, KeyMask
from tests.conftest import NO_RETRY, StartSidecar, openai_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

KEY = "sk-real-openai"


def test_a_key_split_across_every_chunk_border_is_masked() -> None:
    stream = f'data: {{"error": "bad key {KEY}"}}\n\n'.encode()
    for cut in range(len(stream)):
        for second in range(cut, len(stream)):
            mask = KeyMask(KEY)
            parts = [stream[:cut], stream[cut:second], stream[second:]]
            out = b"".join(mask.chunk(p) for p in parts if p) + mask.flush()
            assert out == stream.replace(KEY.encode(), MASK)


def test_a_chunk_that_only_looks_like_a_key_start_is_released() -> None:
    mask = KeyMask(KEY)
    assert mask.chunk(b"data: sk-re") == b"data: "
    assert mask.chunk(b"ad\n\n") == b"sk-read\n\n"
    assert mask.flush() == b""


async def test_a_provider_error_echoing_the_key_reaches_the_app_masked(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    def echoing(status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "x"}}

    fake_openai.error_body = echoing  # type: ignore[method-assign]
    fake_openai.faults.append(Fault(status=401, headers={"x-echo": f"Bearer {KEY}"}))
    sidecar = await start_sidecar(real_spec(fake_openai, **NO_RETRY))
    with pytest.raises(openai.AuthenticationError) as raised:
        await openai_client(sidecar).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    response = raised.value.response
    assert KEY not in response.text
    assert "redacted provider key" in response.text
    assert all(KEY not in value for value in response.headers.values())
