"""Any SDK, any provider: the official SDKs served by fake providers of other dialects.

Each (client dialect, provider dialect) pair answers plain and streamed; tools over
two turns keep their ids; structured output goes through each SDK's parse helper;
an OpenAI-SDK app keeps getting answers when OpenAI fails (from Anthropic, then
from the mock); a provider's mid-stream failure reaches the app as its SDK's error.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel

from proxy.config import ConfigError, load_text
from tests.conftest import (
    StartSidecar,
    anthropic_client,
    gemini_client,
    openai_client,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeProvider, Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.test_admin import get

ASK = [{"role": "user", "content": "Hello"}]
NO_RETRY = {"retry": {"maxAttempts": 1}}
ANSWERS = {"openai": "Real OpenAI answer.", "anthropic": "Real Anthropic answer.",
           "gemini": "Real Gemini answer."}  # fmt: skip
#: What each provider runs for any model asked (`providers[].models`).
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


def provider(kind: str, fake: FakeProvider, name: str | None = None) -> dict[str, Any]:
    base = f"{fake.base}/v1" if kind == "openai" else fake.base
    env = {"openai": "TEST_OPENAI_KEY", "anthropic": "TEST_ANTHROPIC_KEY",
           "gemini": "TEST_GEMINI_KEY"}[kind]  # fmt: skip
    return {"name": name or f"{kind}-only", "type": kind, "baseURL": base,
            "apiKey": {"env": env}, "models": {"default": MODELS[kind]}}  # fmt: skip


@pytest.fixture
def fakes(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> dict[str, FakeProvider]:
    return {"openai": fake_openai, "anthropic": fake_anthropic, "gemini": fake_gemini}


async def ask(client_kind: str, sidecar: Any, stream: bool) -> tuple[str, str | None]:
    """One question through the client's own SDK: (the answer's text, the model it names)."""
    if client_kind == "openai":
        client = openai_client(sidecar)
        if not stream:
            answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
            return answer.choices[0].message.content or "", answer.model
        text, model = "", None
        async for chunk in await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
        ):  # fmt: skip
            model = chunk.model
            text += "".join(c.delta.content or "" for c in chunk.choices)
        return text, model
    if client_kind == "anthropic":
        claude = anthropic_client(sidecar)
        if not stream:
            message = await claude.messages.create(
                model="claude-sonnet-5",
                max_tokens=64,
                messages=ASK,  # type: ignore[arg-type]
            )
            return "".join(b.text for b in message.content if b.type == "text"), message.model
        async with claude.messages.stream(
            model="claude-sonnet-5",
            max_tokens=64,
            messages=ASK,  # type: ignore[arg-type]
        ) as events:
            final = await events.get_final_message()
        assert final.stop_reason == "end_turn"
        return "".join(b.text for b in final.content if b.type == "text"), final.model
    async with gemini_client(sidecar).aio as gemini:
        if not stream:
            response = await gemini.models.generate_content(model="gemini-2.0-flash",
                                                            contents="Hello")  # fmt: skip
            return response.text or "", response.model_version
        text, model = "", None
        async for chunk in await gemini.models.generate_content_stream(
            model="gemini-2.0-flash", contents="Hello"
        ):
            text += chunk.text or ""
            model = chunk.model_version
        return text, model


KINDS = ("openai", "anthropic", "gemini")
PAIRS = [(c, p) for c in KINDS for p in KINDS if c != p]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client_kind", "provider_kind"), PAIRS)
async def test_each_sdk_is_answered_by_each_other_provider(
    start_sidecar: StartSidecar, fakes: dict[str, FakeProvider], client_kind: str,
    provider_kind: str, stream: bool,
) -> None:  # fmt: skip
    fake = fakes[provider_kind]
    sidecar = await start_sidecar(
        {"providers": [provider(provider_kind, fake)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    text, model = await ask(client_kind, sidecar, stream)
    assert text == ANSWERS[provider_kind]
    assert model == MODELS[provider_kind], "the answer names the model that really answered"
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    if provider_kind == "gemini":
        assert MODELS["gemini"] in sent.path
    else:
        assert sent.json["model"] == MODELS[provider_kind]
    for fake_kind, other in fakes.items():
        if fake_kind != provider_kind:
            assert not other.requests


def drill_spec(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> dict[str, Any]:
    return {
        "providers": [
            provider("openai", fake_openai, "openai-primary"),
            provider("anthropic", fake_anthropic, "anthropic-backup")
            | {"models": {"gpt-4o-mini": "claude-haiku-4-5", "default": "claude-sonnet-5"}},
        ],
        "fallback": ["openai-primary", "anthropic-backup", "mock"],
        "traffic": {"realWeight": 100},
    } | NO_RETRY


async def test_openai_failing_an_openai_sdk_app_is_answered_by_anthropic_then_the_mock(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    sidecar = await start_sidecar(drill_spec(fake_openai, fake_anthropic))
    client = openai_client(sidecar)
    fake_openai.faults.extend(Fault(status=500) for _ in range(100))
    for _ in range(3):  # 0 lost: every request answered, by Anthropic
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=ASK,  # type: ignore[arg-type]
        )
        answer = raw.parse()
        assert answer.choices[0].message.content == ANSWERS["anthropic"]
        assert answer.model == "claude-haiku-4-5"
        assert raw.headers["x-llm-backend"] == "anthropic-backup"
        assert raw.headers["x-llm-route-reason"] == "fallback:openai-primary"
    sent = fake_anthropic.requests[-1]
    assert sent.json["model"] == "claude-haiku-4-5", "models maps gpt-4o-mini"
    assert sent.headers["x-api-key"] == fake_anthropic.key
    assert "Authorization" not in sent.headers, "the app's key never leaves the sidecar"

    text = ""
    async for chunk in await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
    ):  # fmt: skip
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == ANSWERS["anthropic"]

    fake_anthropic.faults.extend(Fault(status=529) for _ in range(100))
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
    )
    assert raw.headers["x-llm-backend"] == "mock"
    assert raw.parse().choices[0].message.content


async def test_a_provider_failing_mid_stream_ends_the_translated_stream_with_the_sdks_error(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    sidecar = await start_sidecar(
        {"providers": [provider("anthropic", fake_anthropic)], "traffic": {"realWeight": 100}}
        | NO_RETRY
    )
    fake_anthropic.faults.append(Fault(error_after_chunks=4))
    received = ""
    with pytest.raises(openai.APIError) as raised:
        async for chunk in await openai_client(sidecar).chat.completions.create(
            model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
        ):  # fmt: skip
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received, "the answer had begun"
    assert "Overloaded" in str(raised.value)

    fake_anthropic.faults.append(Fault(cut_after_chunks=4))
    with pytest.raises(genai_errors.APIError):
        async with gemini_client(sidecar).aio as gemini:
            async for _ in await gemini.models.generate_content_stream(
                model="gemini-2.0-flash", contents="Hello"
            ):
                pass


#: Seconds a provider goes silent mid-answer in the JSON-array test.
STALL = 3.0


@pytest.mark.parametrize(("provider_kind", "before_stall"), [("openai", 2), ("anthropic", 4)])
async def test_a_gemini_stream_without_alt_sse_from_another_provider_is_streamed_as_a_json_array(
    start_sidecar: StartSidecar, fakes: dict[str, FakeProvider], provider_kind: str,
    before_stall: int,
) -> None:  # fmt: skip
    """``streamGenerateContent`` without ``?alt=sse`` (the REST default; google-genai always
    asks for SSE, so raw HTTP) served by a provider of another dialect: one JSON array of
    Gemini chunks, whose first chunk reaches the app while the provider is still silent
    mid-answer, so it is translated as it arrives, not held until the end."""
    fake = fakes[provider_kind]
    sidecar = await start_sidecar(
        {"providers": [provider(provider_kind, fake)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    fake.faults.append(Fault(stall_after_chunks=before_stall, stall_seconds=STALL))
    url = (f"http://127.0.0.1:{sidecar.data_port}/v1beta/models/gemini-2.5-flash"
           ":streamGenerateContent")  # fmt: skip
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert response.headers["x-llm-backend"] == f"{provider_kind}-only"
        first = await response.content.readany()
        first_at = loop.time() - started
        whole = first + await response.read()
        ended_at = loop.time() - started
    assert first.startswith(b'[{"candidates"')
    assert b"Real" in first, "the first words, sent before the provider's silence ended"
    assert first_at < STALL < ended_at
    chunks = json.loads(whole)
    assert isinstance(chunks, list)
    text = "".join(
        part.get("text", "") for c in chunks for part in c["candidates"][0]["content"]["parts"]
    )
    assert text == ANSWERS[provider_kind]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0
    assert chunks[-1]["modelVersion"] == MODELS[provider_kind]
    assert fake.requests[-1].json["stream"] is True, "asked of the provider as a stream"


@pytest.mark.parametrize("provider_kind", ["openai", "gemini"])
@pytest.mark.parametrize(
    "fault", [Fault(error_after_chunks=2), Fault(cut_after_chunks=2)], ids=["error-event", "cut"]
)
async def test_a_provider_failing_mid_stream_ends_the_anthropic_sdks_stream_with_event_error(
    start_sidecar: StartSidecar, fakes: dict[str, FakeProvider], provider_kind: str, fault: Fault
) -> None:
    """The Anthropic SDK served by a provider of another dialect that fails mid-answer (its
    own error event, or a cut connection) gets `event: error`, as from the real API, and
    raises -- never a clean-looking `message_stop` after a truncated answer."""
    fake = fakes[provider_kind]
    sidecar = await start_sidecar(
        {"providers": [provider(provider_kind, fake)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    fake.faults.append(fault)
    received, events = "", []
    with pytest.raises(anthropic.APIStatusError) as raised:
        async with anthropic_client(sidecar).messages.stream(
            model="claude-sonnet-5", max_tokens=64, messages=ASK,  # type: ignore[arg-type]
        ) as stream:  # fmt: skip
            async for event in stream:
                events.append(event.type)
                if event.type == "text":
                    received += event.text
    assert received, f"the answer had begun: {events}"
    assert "message_stop" not in events
    error = raised.value.body
    assert isinstance(error, dict), error
    assert error["type"] == "error", error
    assert error["error"]["type"] == "api_error", error
    request_id = raised.value.response.headers["x-llm-request-id"]
    if fault.cut_after_chunks is not None:  # the sidecar's own event: who, which request
        assert error["error"]["message"] == (
            f"provider '{provider_kind}-only' stream cut before completion (request "
            f"{request_id}); the answer so far is incomplete: retry the request"
        )
    else:  # the provider's own error, relayed in the client's dialect
        assert error["error"]["message"] == (
            f"provider '{provider_kind}-only' ({provider_kind}) failed mid-stream: The server "
            "had an error while processing your request."
        )


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_tools_over_two_turns_keep_their_ids_across_dialects(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(
        {"providers": [provider("anthropic", fake_anthropic)], "traffic": {"realWeight": 100}}
        | NO_RETRY
    )
    client = openai_client(sidecar)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
    first = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "weather"}},
        extra_headers={"x-fake-answer": "bad_tool_args"},
    )  # fmt: skip
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"unexpected": True}  # type: ignore[union-attr]
    assert fake_anthropic.requests[0].json["tool_choice"] == {"type": "tool", "name": "weather"}
    second = await client.chat.completions.create(
        model="gpt-4o-mini", tools=tools,  # type: ignore[arg-type]
        messages=[*ASK, first.choices[0].message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": "3 degrees"}],  # type: ignore[list-item]
    )  # fmt: skip
    assert second.choices[0].message.content == ANSWERS["anthropic"]
    turns = fake_anthropic.requests[1].json["messages"]
    assert turns[1]["content"][0]["id"] == call.id
    assert turns[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id,
                                      "content": "3 degrees"}  # fmt: skip

    # Gemini's SDK, served by Anthropic: the function call comes back and its result
    # finds it by name.
    async with gemini_client(sidecar).aio as gemini:
        declaration = types.FunctionDeclaration(name="weather", parameters_json_schema=WEATHER)
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[declaration])],
            http_options=types.HttpOptions(headers={"x-fake-answer": "bad_tool_args"}),
        )
        response = await gemini.models.generate_content(
            model="gemini-2.0-flash", contents="Weather?", config=config,
        )  # fmt: skip
    function_call = response.function_calls[0]  # type: ignore[index]
    assert (function_call.name, function_call.args) == ("weather", {"unexpected": True})
    async with gemini_client(sidecar).aio as gemini:
        await gemini.models.generate_content(
            model="gemini-2.0-flash", config=config.model_copy(update={"http_options": None}),
            contents=[
                types.Content(role="user", parts=[types.Part(text="Weather?")]),
                response.candidates[0].content,  # type: ignore[index, list-item]
                types.Content(role="user", parts=[types.Part.from_function_response(
                    name="weather", response={"temp": 3})]),
            ],
        )  # fmt: skip
    turns = fake_anthropic.requests[-1].json["messages"]
    assert turns[2]["content"][0]["tool_use_id"] == turns[1]["content"][0]["id"]
    assert json.loads(turns[2]["content"][0]["content"]) == {"temp": 3}


class Answer(BaseModel):
    answer: str


async def test_structured_output_through_each_sdks_parse_helper(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    gemini_only = await start_sidecar(
        {"providers": [provider("gemini", fake_gemini)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    parsed = await openai_client(gemini_only).chat.completions.parse(
        model="gpt-4o-mini", messages=ASK, response_format=Answer,  # type: ignore[arg-type]
    )  # fmt: skip
    assert parsed.choices[0].message.parsed == Answer(answer="Real Gemini JSON.")
    config = fake_gemini.requests[-1].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"] == ["answer"]

    fake_openai.answer_text = '{"answer": "Real OpenAI JSON."}'
    openai_only = await start_sidecar(
        {"providers": [provider("openai", fake_openai)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    message = await anthropic_client(openai_only).messages.parse(
        model="claude-sonnet-5", max_tokens=64, messages=ASK,  # type: ignore[arg-type]
        output_format=Answer,
    )  # fmt: skip
    assert message.parsed_output == Answer(answer="Real OpenAI JSON.")
    sent = fake_openai.requests[-1].json["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["required"] == ["answer"]

    async with gemini_client(openai_only).aio as gemini:
        response = await gemini.models.generate_content(
            model="gemini-2.0-flash", contents="Hello",
            config=types.GenerateContentConfig(response_mime_type="application/json",
                                               response_schema=Answer),
        )  # fmt: skip
    assert response.parsed == Answer(answer="Real OpenAI JSON.")


async def test_what_the_provider_cannot_express_is_a_400_naming_the_field(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic
) -> None:
    sidecar = await start_sidecar(
        {"providers": [provider("anthropic", fake_anthropic)], "traffic": {"realWeight": 100}}
        | NO_RETRY
    )
    with pytest.raises(openai.BadRequestError) as refused:
        await openai_client(sidecar).chat.completions.create(
            model="gpt-4o-mini", messages=ASK, logit_bias={"1": 5},  # type: ignore[arg-type]
        )  # fmt: skip
    assert "'logit_bias'" in str(refused.value)
    assert "anthropic" in str(refused.value)
    assert not fake_anthropic.requests, "nothing was sent"


async def test_cost_is_the_price_of_the_model_that_answered(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    spec = drill_spec(fake_openai, fake_anthropic)
    spec["providers"][1]["prices"] = {
        "claude-haiku-4-5": {"inputPerMTok": "1.00", "outputPerMTok": "5.00"}
    }
    sidecar = await start_sidecar(spec)
    fake_openai.faults.append(Fault(status=500))
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
    )
    assert raw.headers["x-llm-backend"] == "anthropic-backup"
    # The Anthropic fake bills 12 input and 5 output tokens of claude-haiku-4-5.
    assert Decimal(raw.headers["x-llm-cost-usd"]) == Decimal(12 * 1 + 5 * 5) / 10**6


async def test_a_budget_holds_the_dearest_provider_of_another_dialect_too(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    spec = drill_spec(fake_openai, fake_anthropic) | {"budget": {"dailyUSD": "0.05"}}
    spec["providers"][1]["prices"] = {
        "claude-haiku-4-5": {"inputPerMTok": "1000", "outputPerMTok": "1000"}
    }
    sidecar = await start_sidecar(spec)
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
        max_tokens=100,  # type: ignore[arg-type]
    )
    # OpenAI alone fits the cap; the Anthropic fallback it may reach does not.
    assert raw.headers["x-llm-route-reason"] == "budget"
    assert raw.headers["x-llm-backend"] == "mock"
    assert not fake_openai.requests
    assert not fake_anthropic.requests


async def test_models_renames_the_model_for_a_provider_of_the_same_dialect(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    spec = {"providers": [provider("openai", fake_openai)
                          | {"models": {"gpt-4o-mini": "gpt-4.1-mini"}}],
            "traffic": {"realWeight": 100}} | NO_RETRY  # fmt: skip
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert answer.model == "gpt-4.1-mini"
    assert fake_openai.requests[-1].json["model"] == "gpt-4.1-mini"
    await client.chat.completions.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    assert fake_openai.requests[-1].json["model"] == "gpt-4o", "no mapping: passed as it is"


def test_models_are_validated_and_named_in_the_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load_text(
            "providers:\n"
            "  - {name: g, type: gemini, baseURL: 'http://x', models: {default: 'a/b'}}\n"
            "  - {name: a, type: anthropic, baseURL: 'http://x', models: {gpt-4o-mini: ''}}\n",
            "rollout.yaml",
        )
    text = str(raised.value)
    assert "models.default: 'a/b' is not a Gemini model name" in text
    assert "providers[1].models.gpt-4o-mini: String should have at least 1 character" in text


async def test_provider_weights_move_real_traffic_between_providers_per_user(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    spec = drill_spec(fake_openai, fake_anthropic)
    spec["traffic"] |= {"providers": {"openai-primary": 50, "anthropic-backup": 50},
                        "stickyKey": {"header": "x-user-id"}}  # fmt: skip
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)

    async def backend(user: str) -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK,  # type: ignore[arg-type]
            extra_headers={"x-user-id": user},
        )  # fmt: skip
        name = raw.headers["x-llm-backend"]
        kind = {"openai-primary": "openai", "anthropic-backup": "anthropic"}[name]
        assert raw.parse().choices[0].message.content == ANSWERS[kind]
        return name

    first = {user: await backend(user) for user in (f"user-{i}" for i in range(16))}
    assert set(first.values()) == {"openai-primary", "anthropic-backup"}
    assert {user: await backend(user) for user in first} == first, "each user stays put"


async def test_responses_requests_are_served_by_other_providers(
    start_sidecar: StartSidecar, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    sidecar = await start_sidecar(
        {"providers": [provider("anthropic", fake_anthropic)], "traffic": {"realWeight": 100}}
        | NO_RETRY
    )
    client = openai_client(sidecar)
    answer = await client.responses.create(model="gpt-4o-mini", input="Hello",
                                           instructions="Be brief.")  # fmt: skip
    assert answer.output_text == ANSWERS["anthropic"]
    assert answer.model == "claude-haiku-4-5"
    assert answer.usage is not None
    assert answer.usage.output_tokens == 5
    assert fake_anthropic.requests[-1].json["system"] == "Be brief."

    kinds, completed = [], None
    async for event in await client.responses.create(
        model="gpt-4o-mini", input="Hello", stream=True
    ):
        kinds.append(event.type)
        if event.type == "response.completed":
            completed = event.response
    assert kinds[0] == "response.created"
    assert "response.output_text.delta" in kinds
    assert completed is not None
    assert completed.output_text == ANSWERS["anthropic"]

    tool = {"type": "function", "name": "weather", "parameters": WEATHER, "strict": False}
    first = await client.responses.create(
        model="gpt-4o-mini", input="Weather?", tools=[tool],  # type: ignore[list-item]
        extra_headers={"x-fake-answer": "bad_tool_args"},
    )  # fmt: skip
    call = first.output[0]
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("weather", {"unexpected": True})
    second = await client.responses.create(
        model="gpt-4o-mini", tools=[tool],  # type: ignore[list-item]
        input=[{"role": "user", "content": "Weather?"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "3 degrees"}],  # type: ignore[list-item]
    )  # fmt: skip
    assert second.output_text == ANSWERS["anthropic"]
    turns = fake_anthropic.requests[-1].json["messages"]
    assert turns[1]["content"][0]["id"] == call.call_id
    assert turns[2]["content"][0]["tool_use_id"] == call.call_id

    gemini_only = await start_sidecar(
        {"providers": [provider("gemini", fake_gemini)], "traffic": {"realWeight": 100}} | NO_RETRY
    )
    parsed = await openai_client(gemini_only).responses.parse(
        model="gpt-4o-mini", input="Hello", text_format=Answer
    )
    assert parsed.output_parsed == Answer(answer="Real Gemini JSON.")


async def test_a_disabled_provider_is_out_of_routing_and_fallback_at_once(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    spec = drill_spec(fake_openai, fake_anthropic)
    spec["providers"][0]["enabled"] = False
    sidecar = await start_sidecar(spec)
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
    )
    assert raw.headers["x-llm-backend"] == "anthropic-backup"
    assert raw.parse().choices[0].message.content == ANSWERS["anthropic"]
    assert not fake_openai.requests, "a disabled provider gets no call"
    status, text = await get(sidecar.admin_port, "/health/llm")
    rows = {row["name"]: row for row in json.loads(text)["providers"]}
    assert status == 200
    assert rows["openai-primary"]["enabled"] is False
    assert rows["openai-primary"]["usable"] is False
    assert rows["anthropic-backup"]["usable"] is True
