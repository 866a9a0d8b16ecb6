"""Offline token counts: exact for OpenAI models, a documented upper-leaning estimate otherwise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import tokens


def test_openai_models_are_counted_exactly_with_their_encoding() -> None:
    # o200k_base: "hello world" is two tokens; cl100k_base agrees on this one.
    assert tokens.count_text("gpt-4o-mini", "hello world") == 2
    assert tokens.count_text("gpt-4o-2024-08-06", "hello world") == 2, "dated snapshot"
    assert tokens.count_text("gpt-5-mini", "hello world") == 2, "newer family by prefix"
    assert tokens.is_exact("gpt-3.5-turbo")
    assert not tokens.is_exact("claude-sonnet-5")


def test_special_token_text_in_a_prompt_is_counted_not_refused() -> None:
    assert tokens.count_text("gpt-4o-mini", "<|endoftext|>") > 1


def test_estimate_counts_non_ascii_a_token_per_character() -> None:
    assert tokens.count_text("claude-sonnet-5", "a" * 40) == 10
    assert tokens.count_text("claude-sonnet-5", "日本語です") == 5
    assert tokens.count_text("gemini-2.5-flash", "") == 0


def test_count_request_sums_messages_system_and_tools_but_not_settings() -> None:
    base = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello world"}]}
    bare = tokens.count_request("openai.chat", base)
    assert bare == 2 + tokens.PER_MESSAGE + tokens.PER_REQUEST
    with_settings = base | {"user": "someone-with-a-long-id", "temperature": 0.5}
    assert tokens.count_request("openai.chat", with_settings) == bare
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather now"}}
    tools = base | {"tools": [tool]}
    assert tokens.count_request("openai.chat", tools) > bare


def test_images_count_a_fixed_allowance_and_reservations_add_a_margin_for_estimates() -> None:
    payload = {
        "model": "claude-sonnet-5",
        "max_tokens": 10,
        "system": "be brief",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?" * 10},
            {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        ]}],
    }  # fmt: skip
    counted = tokens.count_request("anthropic.messages", payload)
    assert counted >= tokens.IMAGE_TOKENS
    reserved = tokens.reservation_tokens("anthropic.messages", payload, "claude-sonnet-5")
    assert reserved >= counted * tokens.ESTIMATE_MARGIN
    exact = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert tokens.reservation_tokens("openai.chat", exact, "gpt-4o-mini") == tokens.count_request(
        "openai.chat", exact
    ), "exact counts need no margin"


def test_tool_schemas_count_their_property_names_and_gpt_4o_mini_images_their_own_rate() -> None:
    base = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    schema = {"type": "object", "properties": {"a_rather_long_parameter_name": {"type": "string"}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    with_tool = tokens.count_request("openai.chat", base | {"tools": [tool]})
    name_tokens = tokens.count_text("gpt-4o-mini", "a_rather_long_parameter_name")
    assert with_tool - tokens.count_request("openai.chat", base) > name_tokens
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    picture = {"role": "user", "content": [image]}
    mini = tokens.count_request("openai.chat", base | {"messages": [picture]})
    gpt4o = tokens.count_request("openai.chat", base | {"model": "gpt-4o", "messages": [picture]})
    assert mini - gpt4o == 2_833 + 8 * 5_667 - tokens.IMAGE_TOKENS


@given(st.text(max_size=400), st.sampled_from(["gpt-4o-mini", "gpt-3.5-turbo", "o3-mini"]))
@settings(max_examples=200, deadline=None)
def test_the_byte_bound_never_under_counts_an_openai_prompt(text: str, model: str) -> None:
    """The table-free bound a far-away cap reserves is never below the exact count."""
    payload = {"model": model, "messages": [{"role": "user", "content": text}]}
    exact = tokens.reservation_tokens("openai.chat", payload, model)
    assert tokens.bound_tokens("openai.chat", payload, model) >= exact


def test_the_bound_of_other_providers_is_their_margined_estimate() -> None:
    payload = {"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "héllo"}]}
    assert tokens.bound_tokens("anthropic.messages", payload, "claude-sonnet-5") == (
        tokens.reservation_tokens("anthropic.messages", payload, "claude-sonnet-5")
    )
