"""The client libraries apps use, run unchanged against a mock-only sidecar over HTTP.

Grouped by library: LangChain (`ChatOpenAI`, `ChatAnthropic`, `ChatGoogleGenerativeAI`),
pydantic-ai (`Agent` over its OpenAI, Anthropic and Google models) and instructor (every
mode that applies to the OpenAI, Anthropic and google-genai SDKs). Each is asked what an
app asks: plain text, a stream, structured output in every way the library offers it,
and a tool loop that must end with an answer once the tool's result is in the
conversation. Prompted JSON (schema in the prompt) is `tests/test_clients_prompted.py`.
Versions are pinned in `pyproject.toml`; the README's mock section lists what is covered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import instructor
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr
from pydantic_ai import Agent, NativeOutput, ToolOutput
from pydantic_ai.messages import ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.openai import OpenAIProvider

from proxy.server.serve import Sidecar
from tests.conftest import APP_KEY, StartSidecar, anthropic_client, gemini_client, openai_client
from tests.test_sdk_prompted import ASK, MOCK_ONLY, Post

#: A question that needs the tool, phrased as apps phrase it.
PRICE_ASK = "What does an oat-milk latte cost? Use the get_price tool."
PRICE = "$4.50"
#: More model turns than any sane loop needs: a mock that keeps calling tools fails here.
MAX_TURNS = 4


@tool
def get_price(product: str) -> str:
    """The current price of a product on the menu."""
    return f"{product}: {PRICE}"


def sensible(post: Post) -> None:
    """A validated post an app could publish: it speaks of the subject, every field filled."""
    assert post.headline.strip(), post
    assert post.body.strip(), post
    assert all(tag.strip() for tag in post.hashtags), post
    assert "latte" in f"{post.headline} {post.body} {' '.join(post.hashtags)}".lower(), post


# -- LangChain ---------------------------------------------------------------------------------


def chat_openai(sidecar: Sidecar) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )


def chat_anthropic(sidecar: Sidecar) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        model_name="claude-sonnet-5",
        base_url=f"http://127.0.0.1:{sidecar.data_port}",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )


def chat_google(sidecar: Sidecar) -> ChatGoogleGenerativeAI:
    return ChatGoogleGenerativeAI(
        model="gemini-2.5-flash",
        base_url=f"http://127.0.0.1:{sidecar.data_port}",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )


async def langchain_text_and_stream(llm: BaseChatModel) -> None:
    """`ainvoke` answers with text about the subject; `astream`'s chunks add up to a message."""
    answer = await llm.ainvoke(ASK)
    assert isinstance(answer, AIMessage)
    assert "latte" in answer.text.lower(), answer.text
    chunks = [chunk async for chunk in llm.astream(ASK)]
    assert len(chunks) > 3
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    assert whole.text == "".join(chunk.text for chunk in chunks)
    assert "latte" in whole.text.lower(), whole.text


async def langchain_tool_loop(llm: BaseChatModel) -> tuple[AIMessage, int]:
    """The loop an app writes around `bind_tools`: run each call, hand back its result."""
    bound = llm.bind_tools([get_price])
    messages: list[BaseMessage] = [HumanMessage(PRICE_ASK)]
    calls = 0
    for _ in range(MAX_TURNS):
        reply = await bound.ainvoke(messages)
        assert isinstance(reply, AIMessage)
        messages.append(reply)
        if not reply.tool_calls:
            return reply, calls
        for call in reply.tool_calls:
            assert call["name"] == "get_price", call
            assert "latte" in str(call["args"].get("product", "")).lower(), call
            calls += 1
            result = await get_price.ainvoke(call["args"])
            messages.append(ToolMessage(result, tool_call_id=call["id"]))
    raise AssertionError(f"no text answer after {MAX_TURNS} turns: {messages}")


#: Each LangChain chat model, by the dialect it speaks to the sidecar.
CHAT_MODELS: dict[str, Callable[[Sidecar], BaseChatModel]] = {
    "openai": chat_openai,
    "anthropic": chat_anthropic,
    "google": chat_google,
}


@pytest.mark.parametrize("provider", CHAT_MODELS)
async def test_langchain_text_and_stream(start_sidecar: StartSidecar, provider: str) -> None:
    await langchain_text_and_stream(CHAT_MODELS[provider](await start_sidecar(MOCK_ONLY)))


@pytest.mark.parametrize("provider", CHAT_MODELS)
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
async def test_langchain_structured_output(
    start_sidecar: StartSidecar, provider: str, method: Literal["function_calling", "json_schema"]
) -> None:
    """Each model's schema-carrying methods: a forced tool (`function_calling`) and the
    provider's own JSON-schema mode (OpenAI `response_format`, Anthropic `output_format`,
    Gemini `responseJsonSchema`), each giving a validated `Post`, invoked and streamed."""
    llm = CHAT_MODELS[provider](await start_sidecar(MOCK_ONLY))
    structured = llm.with_structured_output(Post, method=method)
    post = await structured.ainvoke(ASK)
    assert isinstance(post, Post)
    sensible(post)
    streamed = [part async for part in structured.astream(ASK)]
    assert isinstance(streamed[-1], Post)
    sensible(streamed[-1])


@pytest.mark.parametrize("provider", CHAT_MODELS)
async def test_langchain_tool_loop_ends_with_text(
    start_sidecar: StartSidecar, provider: str
) -> None:
    reply, calls = await langchain_tool_loop(CHAT_MODELS[provider](await start_sidecar(MOCK_ONLY)))
    assert calls == 1
    assert reply.text.strip(), reply


# -- pydantic-ai -------------------------------------------------------------------------------


def pydantic_ai_models(sidecar: Sidecar) -> list[Model]:
    return [
        OpenAIChatModel(
            "gpt-4o-mini", provider=OpenAIProvider(openai_client=openai_client(sidecar))
        ),
        AnthropicModel(
            "claude-sonnet-5",
            provider=AnthropicProvider(anthropic_client=anthropic_client(sidecar)),
        ),
        GoogleModel("gemini-2.5-flash", provider=GoogleProvider(client=gemini_client(sidecar))),
    ]


async def test_pydantic_ai_tool_output_every_provider(start_sidecar: StartSidecar) -> None:
    """`output_type=Post` (pydantic-ai's default: a `final_result` output tool), run and
    streamed, on each provider."""
    for model in pydantic_ai_models(await start_sidecar(MOCK_ONLY)):
        for output in (Post, ToolOutput(Post)):
            agent = Agent(model, output_type=output)
            result = await agent.run(ASK)
            assert isinstance(result.output, Post), model
            sensible(result.output)
            async with agent.run_stream(ASK) as stream:
                post = await stream.get_output()
            assert isinstance(post, Post), model
            sensible(post)


async def test_pydantic_ai_native_output_every_provider(start_sidecar: StartSidecar) -> None:
    """`NativeOutput`: the provider's own JSON-schema mode (OpenAI `response_format`,
    Anthropic `output_format`, Gemini `responseJsonSchema`)."""
    for model in pydantic_ai_models(await start_sidecar(MOCK_ONLY)):
        agent = Agent(model, output_type=NativeOutput(Post))
        result = await agent.run(ASK)
        assert isinstance(result.output, Post), model
        sensible(result.output)
        async with agent.run_stream(ASK) as stream:
            post = await stream.get_output()
        assert isinstance(post, Post), model
        sensible(post)


def price_agent(model: Model, output: type[str] | type[Post]) -> tuple[Agent[None, Any], list[str]]:
    """An agent with a price tool, and the list of products the tool was asked about."""
    asked: list[str] = []
    agent: Agent[None, Any] = Agent(model, output_type=output)

    @agent.tool_plain
    def get_price(product: str) -> str:
        """The current price of a product on the menu."""
        asked.append(product)
        return f"{product}: {PRICE}"

    return agent, asked


async def test_pydantic_ai_agent_calls_its_tool_then_answers(start_sidecar: StartSidecar) -> None:
    """An agent with a tool: the model calls it, gets the price back, then answers, in text
    or through the output tool when the agent wants a `Post`; the loop takes one round."""
    for model in pydantic_ai_models(await start_sidecar(MOCK_ONLY)):
        for output in (str, Post):
            agent, asked = price_agent(model, output)
            result = await agent.run(PRICE_ASK)
            assert len(asked) == 1, (model, output, asked)
            assert "latte" in asked[0].lower(), (model, output, asked)
            if output is str:
                assert isinstance(result.output, str), model
                assert result.output.strip(), model
            else:
                assert isinstance(result.output, Post), model
            # two model turns (the call, then the answer): no retry round
            turns = [m for m in result.all_messages() if isinstance(m, ModelResponse)]
            assert len(turns) == 2, (model, output, result.all_messages())


async def test_pydantic_ai_streams_text(start_sidecar: StartSidecar) -> None:
    for model in pydantic_ai_models(await start_sidecar(MOCK_ONLY)):
        agent = Agent(model)
        async with agent.run_stream(ASK) as stream:
            deltas = [delta async for delta in stream.stream_text(delta=True, debounce_by=None)]
        assert len(deltas) > 3, model
        whole = "".join(deltas)
        assert "latte" in whole.lower(), (model, whole)
        assert await stream.get_output() == whole, model


# -- instructor --------------------------------------------------------------------------------
# Installed with --no-deps (requirements-nodeps.lock): its pins (jiter<0.15) cannot be met
# next to openai 3.x (jiter>=0.16), yet it works with both, as these tests show.


class Price(BaseModel):
    product: str
    price_usd: float = Field(gt=0)


MESSAGES: list[Any] = [{"role": "user", "content": ASK}]
PARALLEL: dict[str, Any] = {
    "response_model": Iterable[Post | Price],
    "messages": MESSAGES,
    "max_retries": 0,
}


async def instructor_post(
    create: Any, create_partial: Any, label: object, min_partials: int = 4, **kw: Any
) -> None:
    """`create` gives a validated `Post`; `create_partial`'s partials grow into a whole one."""
    post = await create(response_model=Post, messages=MESSAGES, max_retries=0, **kw)
    assert isinstance(post, Post), label
    sensible(post)
    partials = [
        part
        async for part in create_partial(
            response_model=Post, messages=MESSAGES, max_retries=0, **kw
        )
    ]
    assert len(partials) >= min_partials, label
    whole = Post.model_validate(partials[-1].model_dump())
    sensible(whole)


M = instructor.Mode
#: (SDK, mode) as an app picks them. instructor 1.17 names modes by kind (TOOLS, JSON, ...)
#: and takes the provider from the client; the provider-prefixed names apps still use are
#: deprecated aliases and covered too. Gemini streams a function call whole, in one chunk,
#: so its tool mode has a single partial; JSON text comes in pieces.
INSTRUCTOR_CASES: list[tuple[str, instructor.Mode, int]] = [
    *[("openai", mode, 4) for mode in (M.TOOLS, M.TOOLS_STRICT, M.JSON, M.JSON_SCHEMA)],
    *[("openai", mode, 4) for mode in (M.MD_JSON, M.RESPONSES_TOOLS)],
    *[("anthropic", mode, 4) for mode in (M.TOOLS, M.JSON, M.JSON_SCHEMA)],
    *[("anthropic", mode, 4) for mode in (M.ANTHROPIC_TOOLS, M.ANTHROPIC_JSON)],
    ("anthropic", M.ANTHROPIC_REASONING_TOOLS, 4),
    ("google", M.TOOLS, 1),
    ("google", M.JSON, 4),
    ("google", M.GENAI_TOOLS, 1),
    ("google", M.GENAI_STRUCTURED_OUTPUTS, 4),
]


@pytest.mark.filterwarnings("ignore:Mode.*is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("sdk", "mode", "least"), INSTRUCTOR_CASES)
async def test_instructor_modes(
    start_sidecar: StartSidecar, sdk: str, mode: instructor.Mode, least: int
) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    if sdk == "openai":
        chat = instructor.from_openai(openai_client(sidecar), mode=mode).chat.completions
        await instructor_post(chat.create, chat.create_partial, mode, least, model="gpt-4o-mini")
    elif sdk == "anthropic":
        messages = instructor.from_anthropic(anthropic_client(sidecar), mode=mode).messages
        kw: dict[str, Any] = {"model": "claude-sonnet-5", "max_tokens": 2048}
        if mode == M.ANTHROPIC_REASONING_TOOLS:
            kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        await instructor_post(messages.create, messages.create_partial, mode, least, **kw)
    else:
        client = instructor.from_genai(gemini_client(sidecar), mode=mode, use_async=True)
        chat = client.chat.completions
        await instructor_post(
            chat.create, chat.create_partial, mode, least, model="gemini-2.5-flash"
        )


@pytest.mark.filterwarnings("ignore:Mode.*is deprecated:DeprecationWarning")
async def test_instructor_parallel_tools(start_sidecar: StartSidecar) -> None:
    """`Iterable[Post | Price]`: several tools offered, each call parsed into its model."""
    sidecar = await start_sidecar(MOCK_ONLY)
    chat = instructor.from_openai(openai_client(sidecar), mode=M.PARALLEL_TOOLS).chat.completions
    got = [await chat.create(model="gpt-4o-mini", **PARALLEL)]
    for mode in (M.PARALLEL_TOOLS, M.ANTHROPIC_PARALLEL_TOOLS):
        messages = instructor.from_anthropic(anthropic_client(sidecar), mode=mode).messages
        got.append(await messages.create(model="claude-sonnet-5", max_tokens=2048, **PARALLEL))
    for objects in map(list, got):
        posts = [o for o in objects if isinstance(o, Post)]
        assert posts, objects
        assert all(isinstance(o, Post | Price) for o in objects), objects
        sensible(posts[0])
