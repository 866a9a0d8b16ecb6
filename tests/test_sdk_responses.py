"""The openai SDK's Responses API through the sidecar: mock and real, streams, parse, errors."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import APP_KEY, NO_RETRY, StartSidecar, openai_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

MOCK_ONLY = {"mock": {"seed": 7}, "traffic": {"realWeight": 0}}

#: The event sequence of a one-message answer, as the API sends it.
SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


class Product(BaseModel):
    name: str
    price: float


def _collapse(types: list[str]) -> list[str]:
    """Event types with runs of deltas folded into one, to compare with SEQUENCE."""
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]


async def test_mock_create(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    raw = await client.responses.with_raw_response.create(
        model="gpt-4.1-mini", input="Write a tagline for hiking boots"
    )
    response = raw.parse()
    assert raw.headers["x-llm-backend"] == "mock"
    assert response.status == "completed"
    assert response.model == "gpt-4.1-mini"
    assert "hiking boots" in response.output_text
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


async def test_mock_stream_sends_the_full_event_sequence(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    async with client.responses.stream(
        model="gpt-4.1-mini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Describe a tent"}]}],
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert _collapse([e.type for e in events]) == SEQUENCE
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text
    assert "tent" in final.output_text
    assert final.usage is not None
    assert final.usage.output_tokens > 0


async def test_mock_rejects_empty_input_in_openai_shape(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    with pytest.raises(openai.BadRequestError, match="'input' is required"):
        await client.responses.create(model="gpt-4.1-mini", input="")


async def test_real_create_swaps_the_key_and_counts_usage(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    raw = await client.responses.with_raw_response.create(model="gpt-4.1-mini", input="Hello")
    response = raw.parse()
    assert response.output_text == "Real OpenAI answer."
    assert raw.headers["x-llm-backend"] == "openai-primary"
    seen = fake_openai.requests[-1]
    assert seen.path == "/v1/responses"
    assert seen.headers["Authorization"] == "Bearer sk-real-openai-test-0000000000"
    assert APP_KEY not in str(seen.headers)
    assert seen.json["input"] == "Hello", "the body is forwarded unchanged"
    tokens = sidecar.runtime.metrics.tokens
    assert (
        tokens.labels("chat", "openai", "gpt-4.1-mini", "input", "openai-primary")._sum.get() == 13
    )
    assert (
        tokens.labels("chat", "openai", "gpt-4.1-mini", "output", "openai-primary")._sum.get() == 6
    )
    requests = sidecar.runtime.metrics.requests
    assert requests.labels("openai.responses", "openai-primary", "real", "200")._value.get() == 1


async def test_real_stream_relays_events_and_reads_usage(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    async with client.responses.stream(model="gpt-4.1-mini", input="Hello") as stream:
        types = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert _collapse(types) == SEQUENCE
    assert final.output_text == "Real OpenAI answer."
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 3
    tokens = sidecar.runtime.metrics.tokens
    output = tokens.labels("chat", "openai", "gpt-4.1-mini", "output", "openai-primary")
    assert output._sum.get() == 6, "usage read from response.completed on the fly"


async def test_real_parse_with_a_pydantic_model(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    fake_openai.json_answer = json.dumps({"name": "Trail Runner", "price": 89.5})
    client = openai_client(await start_sidecar(real_spec(fake_openai)))
    response = await client.responses.parse(
        model="gpt-4.1-mini", input="A product, as JSON", text_format=Product
    )
    assert response.output_parsed == Product(name="Trail Runner", price=89.5)
    sent = fake_openai.requests[-1].json["text"]["format"]
    assert sent["type"] == "json_schema"
    assert sent["schema"]["required"] == ["name", "price"], "the schema reached the provider"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_provider_errors_reach_the_sdk_typed(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, status: int, error: type[Exception]
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, **NO_RETRY)))
    fake_openai.faults.append(Fault(status=status))
    with pytest.raises(error, match=f"scripted {status}"):
        await client.responses.create(model="gpt-4.1-mini", input="Hello")


async def test_stream_cut_midway_raises_in_the_sdk(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    fake_openai.faults.append(Fault(cut_after_chunks=5))
    received = []
    with pytest.raises(openai.APIError, match="before completion"):
        async with client.responses.stream(model="gpt-4.1-mini", input="Hello") as stream:
            async for event in stream:
                received.append(event.type)
    assert received[0] == "response.created", "what arrived before the cut was relayed"
    assert "response.completed" not in received
    cuts = sidecar.runtime.metrics.stream_errors.labels("openai.responses", "openai-primary", "cut")
    assert cuts._value.get() == 1


async def test_mock_parse_gives_json_valid_for_the_model(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    response = await client.responses.parse(
        model="gpt-4.1-mini", input="A product for a shoe shop", text_format=Product
    )
    assert isinstance(response.output_parsed, Product)
    async with client.responses.stream(
        model="gpt-4.1-mini", input="Another product", text_format=Product
    ) as stream:
        final = await stream.get_final_response()
    assert isinstance(final.output_parsed, Product)


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


async def test_mock_function_call_plain_and_streamed(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    ask = {"model": "gpt-4.1-mini", "input": "Weather in Oslo?", "tools": [WEATHER_TOOL],
           "tool_choice": "required"}  # fmt: skip
    response = await client.responses.create(**ask)  # type: ignore[call-overload]
    call = response.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    async with client.responses.stream(**ask) as stream:
        types = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in types
    assert final.output[0].type == "function_call"
    assert isinstance(json.loads(final.output[0].arguments)["city"], str)
