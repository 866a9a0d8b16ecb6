"""Structured output and tool calls on the mock, through the official SDKs' parse helpers."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from proxy.mock.structured import Tool, Wanted, choose_tool, wanted
from tests.conftest import StartSidecar, anthropic_client, openai_client

MOCK_ONLY = {"mock": {"seed": 11}, "traffic": {"realWeight": 0}}


class Ad(BaseModel):
    headline: str = Field(max_length=30)
    description: str = Field(max_length=90)
    cta: str
    landing_url: str


class Campaign(BaseModel):
    name: str
    channel: Literal["email", "instagram", "linkedin", "x"]
    budget_usd: float = Field(gt=0, le=5000)
    ads: list[Ad] = Field(min_length=2, max_length=4)
    contact_email: str
    owner: str | None


class GeminiBrief(BaseModel):
    name: str
    channel: Literal["email", "instagram", "linkedin", "x"]
    ads: list[Ad] = Field(min_length=2, max_length=4)
    owner: str | None


async def test_openai_chat_parse_gives_a_valid_pydantic_object(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Plan a spring campaign for running shoes"}],
        response_format=Campaign,
    )
    campaign = completion.choices[0].message.parsed
    assert isinstance(campaign, Campaign)
    assert 2 <= len(campaign.ads) <= 4
    assert all(len(ad.headline) <= 30 for ad in campaign.ads)
    assert "@" in campaign.contact_email
    assert campaign.ads[0].landing_url.startswith("https://")


async def test_openai_chat_stream_of_json_parses(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    async with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "An ad for a lamp"}],
        response_format=Ad,
    ) as stream:
        chunks = [event async for event in stream if event.type == "content.delta"]
        final = await stream.get_final_completion()
    assert len(chunks) > 2, "JSON arrives in pieces, as a real stream sends it"
    assert isinstance(final.choices[0].message.parsed, Ad)


async def test_openai_json_object_mode_answers_json(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Return a JSON blog outline"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}


async def test_openai_forced_tool_call(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What should I wear in Lisbon?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]


async def test_openai_streamed_tool_call_reassembles(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Use the weather tool for Berlin"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    name, arguments, finish, pieces = "", "", None, 0
    async for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            name += (call.function and call.function.name) or ""
            arguments += (call.function and call.function.arguments) or ""
            pieces += 1
        finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert name == "get_weather"
    assert pieces > 2
    jsonschema.validate(json.loads(arguments), WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]


async def test_openai_answers_text_after_the_tool_result(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Use the weather tool for Berlin"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content


PRODUCT_TOOL = {
    "name": "save_product",
    "description": "Store a product description",
    "input_schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 60},
            "price": {"type": "number", "exclusiveMinimum": 0},
            "features": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        },
        "required": ["title", "price", "features", "sku"],
    },
}


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_forced_tool_use(start_sidecar: StartSidecar, stream: bool) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    request = {
        "model": "claude-sonnet-5",
        "max_tokens": 500,
        "messages": [{"role": "user", "content": "Describe our new desk lamp"}],
        "tools": [PRODUCT_TOOL],
        "tool_choice": {"type": "tool", "name": "save_product"},
    }
    if stream:
        async with client.messages.stream(**request) as events:  # type: ignore[arg-type]
            deltas = [e async for e in events if e.type == "input_json"]
            message = await events.get_final_message()
        assert len(deltas) > 2
    else:
        message = await client.messages.create(**request)  # type: ignore[arg-type]
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "save_product"
    assert block.id.startswith("toolu_")
    jsonschema.validate(block.input, PRODUCT_TOOL["input_schema"])


async def test_anthropic_parse_with_output_format(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    message = await client.messages.parse(
        model="claude-sonnet-5",
        max_tokens=800,
        messages=[{"role": "user", "content": "Plan a campaign for a coffee brand"}],
        output_format=Campaign,
    )
    campaign = message.parsed_output
    assert isinstance(campaign, Campaign)
    assert all(len(ad.description) <= 90 for ad in campaign.ads)


async def test_responses_parse_with_nested_constrained_model(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    response = await client.responses.parse(
        model="gpt-4o-mini", input="Plan a campaign for our tea brand", text_format=Campaign
    )
    campaign = response.output_parsed
    assert isinstance(campaign, Campaign)
    assert all(len(ad.headline) <= 30 for ad in campaign.ads)


@pytest.mark.parametrize("as_json_schema", [False, True])
async def test_gemini_schema_parses_into_the_model(
    start_sidecar: StartSidecar, as_json_schema: bool
) -> None:
    from google.genai import types

    from tests.conftest import gemini_client

    sidecar = await start_sidecar(MOCK_ONLY)
    # google-genai's own Schema type refuses exclusiveMinimum: the SDK path gets GeminiBrief.
    schema = {"response_json_schema": Campaign.model_json_schema()} if as_json_schema else {
        "response_schema": GeminiBrief
    }  # fmt: skip
    async with gemini_client(sidecar).aio as client:
        response = await client.models.generate_content(
            model="gemini-2.5-flash",
            contents="Plan a campaign for our tea brand",
            config=types.GenerateContentConfig(response_mime_type="application/json", **schema),
        )
    model = Campaign if as_json_schema else GeminiBrief
    campaign = model.model_validate_json(response.text or "")
    assert 2 <= len(campaign.ads) <= 4


async def test_gemini_forced_function_call(start_sidecar: StartSidecar) -> None:
    from google.genai import types

    from tests.conftest import gemini_client

    parameters = WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]
    sidecar = await start_sidecar(MOCK_ONLY)
    async with gemini_client(sidecar).aio as client:
        response = await client.models.generate_content(
            model="gemini-2.5-flash",
            contents="What should I wear in Osaka?",
            config=types.GenerateContentConfig(
                tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
                    name="get_weather", parameters_json_schema=parameters)])],
                tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.ANY)),
            ),
        )  # fmt: skip
    assert response.function_calls
    call = response.function_calls[0]
    assert call.name == "get_weather"
    jsonschema.validate(call.args, parameters)


#: pydantic-ai's output tool as it sends it: the app's answer arrives as this call.
FINAL_RESULT = Tool(
    "final_result", "The final response which ends this conversation", {"type": "object"}
)
PRICE_TOOL = Tool("get_price", "The current price of a product", {"type": "object"})


def test_the_answer_tool_carries_the_answer_when_no_other_tool_is_asked_for() -> None:
    """A real model answers through the output tool even when `tool_choice` is auto;
    text would come back as a retry ("Please include your response in a tool call")."""
    chosen = choose_tool([PRICE_TOOL, FINAL_RESULT], None, False, "Write a post on lattes")
    assert chosen == Wanted("tool", FINAL_RESULT.schema, "final_result")


def test_a_tool_loop_ends_once_the_result_is_in() -> None:
    """After a tool's result the working tool is not called again: the answer tool if
    there is one, a tool only when one is required, else text."""
    tools = [PRICE_TOOL, FINAL_RESULT]
    ask = "Use the get_price tool for a latte"
    assert choose_tool(tools, None, True, ask) == Wanted("tool", PRICE_TOOL.schema, "get_price")
    after = choose_tool(tools, None, True, ask, answered=True)
    assert after == Wanted("tool", FINAL_RESULT.schema, "final_result")
    assert choose_tool([PRICE_TOOL], None, False, ask, answered=True) is None
    forced = choose_tool([PRICE_TOOL], "get_price", False, ask, answered=True)
    assert forced == Wanted("tool", PRICE_TOOL.schema, "get_price")  # forced is forced


def test_gemini_any_mode_with_several_allowed_functions_is_not_forcing_the_first() -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "Use the get_price tool for a latte"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_price", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_price"}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "get_price"}, {"name": "final_result"}]}],
        "toolConfig": {
            "functionCallingConfig": {
                "mode": "ANY",
                "allowedFunctionNames": ["get_price", "final_result"],
            }
        },
    }
    chosen = wanted("gemini.generate_content", payload, "")
    assert chosen is not None
    assert chosen.name == "final_result"


def test_told_to_answer_by_tool_call_the_mock_calls_the_tool() -> None:
    """instructor's thinking mode cannot force the tool, so it says so in the system prompt;
    pydantic-ai's retry says it in the turn. A real model obeys either."""
    payload = {
        "system": [{"type": "text", "text": "Return only the tool call and no additional text."}],
        "messages": [{"role": "user", "content": "Write a post about our latte"}],
        "tools": [{"name": "PartialPost", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
    }
    chosen = wanted("anthropic.messages", payload, "Write a post about our latte")
    assert chosen is not None
    assert chosen.name == "PartialPost"
    retry = "Please include your response in a tool call."
    assert choose_tool([PRICE_TOOL], None, False, retry) is not None
    assert choose_tool([PRICE_TOOL], None, False, "Write a post about our latte") is None
