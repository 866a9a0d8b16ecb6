"""Prompted JSON with the real client libraries, run unchanged against a mock-only sidecar.

LangChain's `PydanticOutputParser` (format instructions in the human turn, parsed by
the library) over `ChatOpenAI` and `ChatAnthropic`, streamed or not, and pydantic-ai's
`PromptedOutput` over its OpenAI, Anthropic and Google models. instructor's
prompted modes (`Mode.JSON`, `Mode.MD_JSON`, `Mode.ANTHROPIC_JSON`) run in
`tests/test_clients.py` with the rest of its modes.
"""

from __future__ import annotations

from langchain_anthropic import ChatAnthropic
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from pydantic import SecretStr
from pydantic_ai import Agent, PromptedOutput
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.conftest import APP_KEY, StartSidecar, anthropic_client, gemini_client, openai_client
from tests.test_sdk_prompted import ASK, MOCK_ONLY, Post

PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You write marketing copy."), ("human", "{ask}\n\n{format_instructions}")]
)
PARSER = PydanticOutputParser(pydantic_object=Post)


async def test_langchain_output_parser_over_chat_openai(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )
    chain = PROMPT | llm | PARSER
    ask = {"ask": ASK, "format_instructions": PARSER.get_format_instructions()}
    post = await chain.ainvoke(ask)
    assert isinstance(post, Post)
    assert "latte" in f"{post.headline} {post.body}".lower()
    streamed = [part async for part in (PROMPT | llm).astream(ask)]
    assert len(streamed) > 3
    assert isinstance(PARSER.parse("".join(str(p.content) for p in streamed)), Post)


async def test_langchain_output_parser_over_chat_anthropic(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    llm = ChatAnthropic(  # type: ignore[call-arg]
        model_name="claude-sonnet-5",
        base_url=f"http://127.0.0.1:{sidecar.data_port}",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )
    chain = PROMPT | llm | PARSER
    ask = {"ask": ASK, "format_instructions": PARSER.get_format_instructions()}
    assert isinstance(await chain.ainvoke(ask), Post)
    text = "".join([str(part.content) async for part in (PROMPT | llm).astream(ask)])
    assert isinstance(PARSER.parse(text), Post)


async def test_pydantic_ai_prompted_output_over_every_provider(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    models = [
        OpenAIChatModel(
            "gpt-4o-mini", provider=OpenAIProvider(openai_client=openai_client(sidecar))
        ),
        AnthropicModel(
            "claude-sonnet-5",
            provider=AnthropicProvider(anthropic_client=anthropic_client(sidecar)),
        ),
        GoogleModel("gemini-2.5-flash", provider=GoogleProvider(client=gemini_client(sidecar))),
    ]
    for model in models:
        agent = Agent(model, output_type=PromptedOutput(Post))
        result = await agent.run(ASK)
        assert isinstance(result.output, Post), model
        async with agent.run_stream(ASK) as stream:
            assert isinstance(await stream.get_output(), Post), model


async def test_langchain_json_mode_with_the_schema_in_the_prompt(
    start_sidecar: StartSidecar,
) -> None:
    """`with_structured_output(method="json_mode")` sends `json_object` and leaves the schema
    to the prompt, as LangChain's docs tell the app to do."""
    sidecar = await start_sidecar(MOCK_ONLY)
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1",
        api_key=SecretStr(APP_KEY),
        max_retries=0,
    )
    structured = llm.with_structured_output(Post, method="json_mode")
    post = await structured.ainvoke(f"{ASK}\n\n{PARSER.get_format_instructions()}")
    assert isinstance(post, Post)
