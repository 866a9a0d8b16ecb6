"""Quality through the official SDKs: fake providers answer badly on demand
(`x-fake-answer`), the sidecar scores every answer of either arm and counts each
failure under its reason, per arm, in /metrics and in the window stats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types

from proxy.server.serve import Sidecar
from tests.conftest import (
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
    real_spec,
    wait_until,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

BRAND = json.dumps({"name": "Northwind Coffee", "avoid": ["cheap"], "keywords": ["fair trade"]})
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
SCHEMA = {"type": "object", "properties": {"headline": {"type": "string"}},
          "required": ["headline"], "additionalProperties": False}  # fmt: skip
#: mode -> the reason the scorer names (long_post: a deduction, not a rejection)
MODES = {
    "empty": "empty",
    "refusal": "refusal",
    "truncated": "truncated",
    "bad_json": "invalid_json",
    "schema_mismatch": "schema_mismatch",
    "bad_tool_args": "invalid_tool_arguments",
    "unknown_tool": "unknown_tool",
    "avoided": "avoided_word",
}


REJECTED = "llm_rollout_quality_rejections_total"


def sample(sidecar: Sidecar, name: str, **labels: str) -> float:
    value = sidecar.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def headers(mode: str | None, task: str = "social_media_post") -> dict[str, str]:
    found = {"x-llm-task": task, "x-brand-context": BRAND}
    return found | ({"x-fake-answer": mode} if mode else {})


async def ask_openai(sidecar: Sidecar, mode: str | None, stream: bool) -> None:
    extra: dict[str, Any] = {}
    if mode in ("bad_json", "schema_mismatch"):
        extra["response_format"] = {"type": "json_schema",
                                    "json_schema": {"name": "ad", "schema": SCHEMA}}  # fmt: skip
    if mode in ("bad_tool_args", "unknown_tool"):
        extra["tools"] = [{"type": "function", "function": {"name": "weather",
                                                            "parameters": PARAMS}}]  # fmt: skip
    client = openai_client(sidecar)
    messages: Any = [{"role": "user", "content": "Write a LinkedIn post about cold brew"}]
    if not stream:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, extra_headers=headers(mode), **extra
        )
        return
    chunks = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, extra_headers=headers(mode), stream=True, **extra
    )
    async for _ in chunks:
        pass


async def ask_anthropic(sidecar: Sidecar, mode: str | None, stream: bool) -> None:
    extra: dict[str, Any] = {}
    if mode in ("bad_json", "schema_mismatch"):
        extra["extra_body"] = {"output_config": {"format": {"type": "json_schema",
                                                            "schema": SCHEMA}}}  # fmt: skip
    if mode in ("bad_tool_args", "unknown_tool"):
        extra["tools"] = [{"name": "weather", "input_schema": PARAMS}]
    client = anthropic_client(sidecar)
    messages: Any = [{"role": "user", "content": "Write a LinkedIn post about cold brew"}]
    if not stream:
        await client.messages.create(
            model="claude-sonnet-5", max_tokens=1024, messages=messages,
            extra_headers=headers(mode), **extra,
        )  # fmt: skip
        return
    async with client.messages.stream(
        model="claude-sonnet-5", max_tokens=1024, messages=messages,
        extra_headers=headers(mode), **extra,
    ) as events:  # fmt: skip
        async for _ in events:
            pass


async def ask_gemini(sidecar: Sidecar, mode: str | None, stream: bool) -> None:
    config = types.GenerateContentConfig(http_options=types.HttpOptions(headers=headers(mode)))
    if mode in ("bad_json", "schema_mismatch"):
        config.response_mime_type = "application/json"
        config.response_json_schema = SCHEMA
    if mode in ("bad_tool_args", "unknown_tool"):
        config.tools = [types.Tool(function_declarations=[
            types.FunctionDeclaration(name="weather", parameters_json_schema=PARAMS)])]  # fmt: skip
        config.automatic_function_calling = types.AutomaticFunctionCallingConfig(disable=True)
    client = gemini_client(sidecar).aio
    prompt = "Write a LinkedIn post about cold brew"
    if not stream:
        await client.models.generate_content(
            model="gemini-2.5-flash", contents=prompt, config=config
        )
        return
    async for _ in await client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=prompt, config=config
    ):
        pass


ASK = {"openai": ask_openai, "anthropic": ask_anthropic, "gemini": ask_gemini}
BACKEND = {"openai": "openai-primary", "anthropic": "anthropic-primary", "gemini": "gemini-primary"}


Fakes = tuple[Sidecar, FakeOpenAI, FakeAnthropic, FakeGemini]


async def real_sidecar(start_sidecar: StartSidecar) -> Fakes:
    fakes = (await FakeOpenAI().start(), await FakeAnthropic().start(), await FakeGemini().start())
    assert isinstance(fakes[0], FakeOpenAI)
    assert isinstance(fakes[1], FakeAnthropic)
    assert isinstance(fakes[2], FakeGemini)
    spec = real_spec(fakes[0], fakes[1], gemini_fake=fakes[2], retry={"maxAttempts": 1})
    return await start_sidecar(spec), *fakes


@pytest.mark.parametrize("sdk", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
async def test_each_bad_answer_is_rejected_with_its_reason(
    start_sidecar: StartSidecar, sdk: str, stream: bool
) -> None:
    sidecar, *fakes = await real_sidecar(start_sidecar)
    try:
        backend = BACKEND[sdk]
        for mode, reason in MODES.items():
            await ASK[sdk](sidecar, mode, stream)
            labels = {"arm": "real", "backend": backend, "reason": reason, "shadow": "false"}
            await wait_until(lambda labels=labels: sample(sidecar, REJECTED, **labels) == 1)
        await ASK[sdk](sidecar, None, stream)  # a good answer: no rejection, a full score
        score = {"arm": "real", "backend": backend, "task": "social_media_post", "shadow": "false"}
        await wait_until(
            lambda: sample(sidecar, "llm_rollout_quality_score_count", **score) == len(MODES) + 1
        )
        window = sidecar.runtime.stats.drain()["real"].quality
        assert (window.scored, window.rejections) == (len(MODES) + 1, len(MODES))
        assert window.score_sum == 5.0
        assert window.brand_checked == len(MODES) + 1
        assert window.brand_compliant == len(MODES)  # all but the avoided word
        violation = {"arm": "real", "backend": backend, "result": "violation", "shadow": "false"}
        assert sample(sidecar, "llm_rollout_brand_compliance_total", **violation) == 1
    finally:
        for fake in fakes:
            await fake.stop()


async def test_an_over_limit_post_loses_points(start_sidecar: StartSidecar) -> None:
    sidecar, *fakes = await real_sidecar(start_sidecar)
    try:
        client = openai_client(sidecar)
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Write a tweet about our cold brew"}],
            extra_headers=headers("long_post"),
        )
        labels = {"arm": "real", "backend": "openai-primary", "task": "social_media_post",
                  "shadow": "false"}  # fmt: skip
        await wait_until(lambda: sample(sidecar, "llm_rollout_quality_score_count", **labels) == 1)
        assert sample(sidecar, "llm_rollout_quality_score_sum", **labels) == 3.5
    finally:
        for fake in fakes:
            await fake.stop()


async def test_the_mock_arm_is_scored_too(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar({"mock": {"seed": 2}, "traffic": {"realWeight": 0}})
    await ask_openai(sidecar, None, stream=True)
    await ask_anthropic(sidecar, None, stream=False)
    labels = {"arm": "mock", "backend": "mock", "task": "social_media_post", "shadow": "false"}
    await wait_until(lambda: sample(sidecar, "llm_rollout_quality_score_count", **labels) == 2)
    assert sample(sidecar, "llm_rollout_quality_score_sum", **labels) == 10.0
    window = sidecar.runtime.stats.drain()["mock"].quality
    assert (window.scored, window.rejections, window.brand_compliant) == (2, 0, 2)
