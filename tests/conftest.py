"""Shared fixtures: fake providers, a sidecar in-process on loopback, SDK clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from proxy.config import LLMRolloutSpec, parse_spec
from proxy.server.serve import Address, Sidecar
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

#: The key the app holds: never a provider key, and never what the provider must see.
APP_KEY = "app-side-dummy-key"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = await FakeAnthropic().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini().start()
    yield fake
    await fake.stop()


#: The sidecar makes one call per provider, so a provider's error is the answer as it is.
NO_RETRY: dict[str, Any] = {"retry": {"maxAttempts": 1}}


def real_spec(
    openai_fake: FakeOpenAI | None = None,
    anthropic_fake: FakeAnthropic | None = None,
    weight: int = 100,
    gemini_fake: FakeGemini | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A spec sending `weight`% to the given fakes, keys taken from env vars set by the test."""
    providers = []
    if openai_fake is not None:
        providers.append({"name": "openai-primary", "type": "openai",
                          "baseURL": f"{openai_fake.base}/v1",
                          "apiKey": {"env": "TEST_OPENAI_KEY"}})  # fmt: skip
    if anthropic_fake is not None:
        providers.append({"name": "anthropic-primary", "type": "anthropic",
                          "baseURL": anthropic_fake.base,
                          "apiKey": {"env": "TEST_ANTHROPIC_KEY"}})  # fmt: skip
    if gemini_fake is not None:
        providers.append({"name": "gemini-primary", "type": "gemini",
                          "baseURL": gemini_fake.base,
                          "apiKey": {"env": "TEST_GEMINI_KEY"}})  # fmt: skip
    return {"providers": providers, "traffic": {"realWeight": weight}} | extra


StartSidecar = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
async def start_sidecar(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StartSidecar]:
    """Start sidecars on free loopback ports; they are stopped after the test."""
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-real-openai-test-0000000000")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-real-test-000000000000")
    monkeypatch.setenv("TEST_GEMINI_KEY", "AIzaRealGeminiTestKey000000000000000000")
    started: list[Sidecar] = []

    async def start(
        spec: dict[str, Any] | LLMRolloutSpec,
        config_path: Path | None = None,
        **options: Any,
    ) -> Sidecar:
        parsed = spec if isinstance(spec, LLMRolloutSpec) else parse_spec(spec)
        sidecar = Sidecar(
            parsed,
            config_path,
            listen=Address("127.0.0.1", 0),
            admin_listen=Address("127.0.0.1", 0),
            **options,
        )
        await sidecar.start()
        started.append(sidecar)
        return sidecar

    yield start
    for sidecar in started:
        await sidecar.stop()


def openai_client(sidecar: Sidecar) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1", api_key=APP_KEY, max_retries=0
    )


def anthropic_client(sidecar: Sidecar) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=f"http://127.0.0.1:{sidecar.data_port}", api_key=APP_KEY, max_retries=0
    )


def gemini_client(sidecar: Sidecar) -> genai.Client:
    """google-genai pointed at the sidecar; use `.aio` for the asyncio client.

    `http_options.base_url` is the documented override (as is GOOGLE_GEMINI_BASE_URL);
    retries are off by default in google-genai, so a test sees each answer as sent.
    """
    return genai.Client(
        api_key=APP_KEY,
        http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{sidecar.data_port}"),
    )


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll `condition` until true; fail after `within` seconds (generous: shared machines)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
