"""Prompted JSON through the sidecar's mock with the official SDKs, in every dialect.

The requests are the ones instructor, LangChain and pydantic-ai send (their prompt
templates reproduced verbatim below: instructor 1.x `Mode.JSON` and
`Mode.ANTHROPIC_JSON`, langchain-core `PydanticOutputParser` format instructions,
pydantic-ai `PromptedOutput`), so the mock's reading of them is tested with the SDKs
alone; the libraries themselves run in `tests/test_clients*.py`. Each answer must parse
into the app's pydantic model, as the library would parse it.
"""

from __future__ import annotations

import json
from textwrap import dedent
from typing import Literal

from google.genai import types
from pydantic import BaseModel, Field

from tests.conftest import StartSidecar, anthropic_client, gemini_client, openai_client

MOCK_ONLY = {"mock": {"seed": 23}, "traffic": {"realWeight": 0}}


class Post(BaseModel):
    headline: str = Field(max_length=60)
    body: str
    hashtags: list[str] = Field(min_length=1, max_length=5)
    platform: Literal["linkedin", "x", "instagram"]
    word_count: int = Field(ge=1, le=400)


def instructor_json(model: type[BaseModel]) -> str:
    """instructor's schema message (`Mode.JSON`, `Mode.ANTHROPIC_JSON`), verbatim."""
    schema = json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False)
    return dedent(
        f"""
        As a genius expert, your task is to understand the content and provide
        the parsed objects in json that match the following json_schema:\n

        {schema}

        Make sure to return an instance of the JSON, not the schema itself
        """
    )


def langchain_format_instructions(model: type[BaseModel]) -> str:
    """langchain-core `PydanticOutputParser.get_format_instructions()`, verbatim: an example
    schema and a counter-example come before the real one, whose title and type are cut."""
    schema = {k: v for k, v in model.model_json_schema().items() if k not in ("title", "type")}
    return (
        "The output should be formatted as a JSON instance that conforms to the JSON schema "
        'below.\n\nAs an example, for the schema {"properties": {"foo": {"title": "Foo", '
        '"description": "a list of strings", "type": "array", "items": {"type": "string"}}}, '
        '"required": ["foo"]}\nthe object {"foo": ["bar", "baz"]} is a well-formatted instance '
        'of the schema. The object {"properties": {"foo": ["bar", "baz"]}} is not '
        "well-formatted.\n\nHere is the output schema:\n```\n"
        + json.dumps(schema, ensure_ascii=False)
        + "\n```"
    )


def pydantic_ai_prompted(model: type[BaseModel]) -> str:
    """pydantic-ai's default `PromptedOutput` template, verbatim."""
    return dedent(
        """
        Always respond with a JSON object that's compatible with this schema:

        {schema}

        Don't include any text or Markdown fencing before or after.
        """
    ).format(schema=json.dumps(model.model_json_schema()))


ASK = "Write a LinkedIn post announcing our new oat-milk latte"


async def test_instructor_json_mode_on_openai_chat(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": instructor_json(Post)},
            {"role": "user", "content": ASK},
        ],
        response_format={"type": "json_object"},
    )
    post = Post.model_validate_json(completion.choices[0].message.content or "")
    assert "latte" in f"{post.headline} {post.body}".lower()


async def test_instructor_json_mode_streamed_on_openai_chat(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": instructor_json(Post)},
            {"role": "user", "content": ASK},
        ],
        response_format={"type": "json_object"},
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(pieces) > 3  # streamed in pieces, like a real model
    Post.model_validate_json("".join(pieces))


async def test_instructor_anthropic_json_mode(start_sidecar: StartSidecar) -> None:
    """Only the system prompt asks for JSON: a real model answers JSON text, so must the mock."""
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    message = await client.messages.create(
        model="claude-sonnet-5",
        max_tokens=1024,
        system=[{"type": "text", "text": instructor_json(Post)}],
        messages=[{"role": "user", "content": ASK}],
    )
    assert message.content[0].type == "text"
    Post.model_validate_json(message.content[0].text)


async def test_instructor_anthropic_json_mode_streamed(start_sidecar: StartSidecar) -> None:
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    async with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=1024,
        system=[{"type": "text", "text": instructor_json(Post)}],
        messages=[{"role": "user", "content": ASK}],
    ) as stream:
        text = await stream.get_final_text()
    Post.model_validate_json(text)


async def test_anthropic_prefilled_brace_is_continued(start_sidecar: StartSidecar) -> None:
    """The app prefills `{` and joins it to the answer, which must therefore not repeat it."""
    client = anthropic_client(await start_sidecar(MOCK_ONLY))
    message = await client.messages.create(
        model="claude-sonnet-5",
        max_tokens=1024,
        messages=[
            {"role": "user", "content": f"{ASK}.\n{langchain_format_instructions(Post)}"},
            {"role": "assistant", "content": "{"},
        ],
    )
    assert message.content[0].type == "text"
    Post.model_validate_json("{" + message.content[0].text)


async def test_langchain_format_instructions_on_openai_responses(
    start_sidecar: StartSidecar,
) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    response = await client.responses.create(
        model="gpt-4.1-mini", input=f"{ASK}.\n\n{langchain_format_instructions(Post)}"
    )
    Post.model_validate_json(response.output_text)


async def test_pydantic_ai_prompted_output_on_gemini(start_sidecar: StartSidecar) -> None:
    async with gemini_client(await start_sidecar(MOCK_ONLY)).aio as client:
        response = await client.models.generate_content(
            model="gemini-2.5-flash",
            contents=ASK,
            config=types.GenerateContentConfig(system_instruction=pydantic_ai_prompted(Post)),
        )
        Post.model_validate_json(response.text or "")
        text = ""
        async for chunk in await client.models.generate_content_stream(
            model="gemini-2.5-flash",
            contents=ASK,
            config=types.GenerateContentConfig(system_instruction=pydantic_ai_prompted(Post)),
        ):
            text += chunk.text or ""
        Post.model_validate_json(text)


async def test_pydantic_style_field_listing_on_openai_chat(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": f"{ASK}. Respond only with JSON with these fields:\n"
                "- headline: str\n- hashtags: list[str]\n- reading_minutes: int\n"
                "- sponsored: bool",
            }
        ],
    )
    value = json.loads(completion.choices[0].message.content or "")
    assert isinstance(value["headline"], str)
    assert all(isinstance(tag, str) for tag in value["hashtags"])
    assert isinstance(value["reading_minutes"], int)
    assert isinstance(value["sponsored"], bool)


async def test_asked_for_json_without_a_schema_gets_an_object_not_prose(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    chat = await openai_client(sidecar).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"{ASK}. Respond only with valid JSON."}],
    )
    message = await anthropic_client(sidecar).messages.create(
        model="claude-sonnet-5",
        max_tokens=512,
        messages=[{"role": "user", "content": f"{ASK}. Return the result as JSON."}],
    )
    assert message.content[0].type == "text"
    for text in (chat.choices[0].message.content or "", message.content[0].text):
        value = json.loads(text)
        assert isinstance(value, dict)
        assert value
        assert all(isinstance(v, str) and v.strip() for v in value.values())


async def test_a_prompt_schema_no_answer_can_satisfy_gets_an_object_not_an_error(
    start_sidecar: StartSidecar,
) -> None:
    """A schema in a prompt binds nobody: an impossible one is ignored, not a 400 or a hang."""
    endless = '{"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}}'
    huge = '{"type": "array", "minItems": 100000000, "items": {"type": "string"}}'
    client = openai_client(await start_sidecar(MOCK_ONLY))
    for schema in (endless, huge):
        completion = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Return JSON matching this schema: {schema}"}],
            response_format={"type": "json_object"},
        )
        assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_a_prompt_without_json_still_gets_prose(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Write a blog post about storing JSON in Postgres"}],
    )
    text = completion.choices[0].message.content or ""
    assert text.startswith("# ")
