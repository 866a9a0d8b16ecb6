"""Mock token usage (a real tokenizer for OpenAI models) and the shadow cost it implies."""

from __future__ import annotations

import re

import aiohttp
import genai_prices
import pytest

from proxy import tokens
from tests.conftest import StartSidecar, anthropic_client, openai_client

MOCK_ONLY = {"mock": {"seed": 2, "tokenCount": "exact"}, "traffic": {"realWeight": 0}}


async def metrics(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


def shadow(text: str, provider: str, model: str) -> float:
    found = re.search(
        rf'llm_rollout_mock_shadow_cost_usd_total\{{model="{re.escape(model)}",'
        rf'provider="{provider}"\}} ([0-9.e-]+)',
        text,
    )
    assert found, f"no shadow cost for {provider}/{model}"
    return float(found.group(1))


async def test_openai_usage_is_counted_with_the_real_tokenizer(
    start_sidecar: StartSidecar,
) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    messages = [{"role": "user", "content": "Write a tweet about our summer sale on sandals"}]
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    usage = completion.usage
    assert usage is not None
    content = completion.choices[0].message.content or ""
    assert usage.completion_tokens == tokens.count_text("gpt-4o-mini", content)
    assert tokens.is_exact("gpt-4o-mini")
    # The request as the SDK sent it: messages plus OpenAI's per-message framing.
    body = {"model": "gpt-4o-mini", "messages": messages}
    assert usage.prompt_tokens == tokens.count_request("openai.chat", body)


async def test_max_tokens_caps_counted_output(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o",
        max_tokens=7,
        messages=[{"role": "user", "content": "Write a blog post about espresso"}],
    )
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 7
    assert completion.choices[0].finish_reason == "length", "cut answers say so, as real ones do"


async def test_anthropic_cut_answer_stops_for_max_tokens(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    ask = {"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "A blog post"}]}
    cut = await client.messages.create(max_tokens=5, **ask)  # type: ignore[call-overload]
    whole = await client.messages.create(max_tokens=4000, **ask)  # type: ignore[call-overload]
    assert cut.stop_reason == "max_tokens"
    assert cut.usage.output_tokens <= 5
    assert whole.stop_reason == "end_turn"


async def test_shadow_cost_is_what_the_real_provider_would_charge(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    completion = await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "An email about socks"}]
    )
    message = await anthropic_client(sidecar).messages.create(
        model="claude-sonnet-5", max_tokens=300,
        messages=[{"role": "user", "content": "An email about socks"}],
    )  # fmt: skip
    text = await metrics(sidecar.admin_port)
    assert completion.usage is not None
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=completion.usage.prompt_tokens,
            output_tokens=completion.usage.completion_tokens,
        ),
        model_ref="gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert shadow(text, "openai", "gpt-4o-mini") == pytest.approx(float(expected))
    assert message.usage.input_tokens > 0
    assert shadow(text, "anthropic", "claude-sonnet-5") > 0


def test_counting_a_request_with_a_nullable_schema_does_not_crash() -> None:
    # A JSON schema's "type" can be a list; the prompt walk once hashed it and raised.
    body = {
        "model": "claude-sonnet-5",
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"a": {"type": ["string", "null"]}}}}},
    }  # fmt: skip
    assert tokens.count_request("anthropic.messages", body) > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_cut_answer_is_incomplete(
    start_sidecar: StartSidecar, stream: bool
) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    ask = {"model": "gpt-4o-mini", "input": "Write a blog post", "max_output_tokens": 16}
    if stream:
        events = [e async for e in await client.responses.create(stream=True, **ask)]  # type: ignore[call-overload]
        assert events[-1].type == "response.incomplete"
        response = events[-1].response
    else:
        response = await client.responses.create(**ask)  # type: ignore[call-overload]
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens <= 16


async def test_estimate_mode_is_the_default_and_skips_the_tokenizer(
    start_sidecar: StartSidecar,
) -> None:
    spec = {"mock": {"seed": 2}, "traffic": {"realWeight": 0}}
    client = openai_client(await start_sidecar(spec))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "A tweet about tea"}]
    )
    assert completion.usage is not None
    content = completion.choices[0].message.content or ""
    assert completion.usage.completion_tokens == tokens.estimate(content)


async def test_anthropic_stream_counts_the_prompt_from_message_start(
    start_sidecar: StartSidecar,
) -> None:
    """As Anthropic does: the prompt's tokens in message_start, the totals in message_delta
    (the mock's stream is the translation of its OpenAI-chat stream, which has neither)."""
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    events = [
        event
        async for event in await client.messages.create(
            model="claude-sonnet-5", max_tokens=300, stream=True,
            messages=[{"role": "user", "content": "An email about socks"}],
        )
    ]  # fmt: skip
    assert events[0].type == "message_start"
    delta = next(event for event in events if event.type == "message_delta")
    assert events[0].message.usage.input_tokens == delta.usage.input_tokens
    assert delta.usage.input_tokens is not None
    assert delta.usage.input_tokens > 0
    assert delta.usage.output_tokens > 0
