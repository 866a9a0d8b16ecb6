"""The pure translators: each direction's requests, answers, streams and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.dialects import ErrorKind, ParsedRequest
from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.dialects.gemini import Gemini
from proxy.dialects.openai_chat import OpenAIChat
from proxy.dialects.openai_responses import OpenAIResponses
from proxy.sse import SSEParser, encode
from proxy.translate import Translation, Untranslatable
from proxy.translate import gemini as gemini_tr

PNG = "iVBORw0KGgo="
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
OPENAI_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Weather.", "parameters": WEATHER},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END"],
    "max_completion_tokens": 300,
}


def parsed(
    dialect: Any, payload: dict[str, Any], model: str | None = None, stream: bool = False
) -> ParsedRequest:
    body = json.dumps(payload).encode()
    return dialect.parse(body, path_model=model, query_stream=stream)  # type: ignore[no-any-return]


def sent(client: Any, provider: Any, request: ParsedRequest, model: str) -> dict[str, Any]:
    return json.loads(Translation(client, provider, request).request(model).body)  # type: ignore[no-any-return]


#: A request of each client dialect, for translating answers to it.
REQUESTS = {
    "openai": lambda: parsed(
        OpenAIChat(), {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    ),
    "anthropic": lambda: parsed(
        AnthropicMessages(),
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    ),
    "gemini": lambda: parsed(
        Gemini(), {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}, "g"
    ),
}


def answering(client: Any, provider: Any) -> Translation:
    return Translation(client, provider, REQUESTS[client.provider_type]())


def events(raw: bytes) -> list[tuple[str | None, Any]]:
    out = []
    for event in SSEParser().feed(raw):
        out.append((event.event, event.data if event.data == "[DONE]" else json.loads(event.data)))
    return out


# -- requests -------------------------------------------------------------------------------


def test_openai_request_for_anthropic_keeps_every_meaningful_field() -> None:
    body = sent(
        OpenAIChat(),
        "anthropic",
        parsed(OpenAIChat(), OPENAI_REQUEST),
        "claude-haiku-4-5",
    )
    assert body["model"] == "claude-haiku-4-5"
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 300
    assert body["stop_sequences"] == ["END"]
    assert (body["temperature"], body["top_p"]) == (0.2, 0.9)
    assert body["tool_choice"] == {"type": "tool", "name": "weather"}
    assert body["tools"] == [
        {"name": "weather", "input_schema": WEATHER, "description": "Weather."}
    ]
    user, assistant, results = body["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert assistant["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}
    ]
    # The tool result and the next user text are one user turn, the result first.
    assert results["role"] == "user"
    assert results["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": '{"temp": 3}',
    }
    assert results["content"][1] == {"type": "text", "text": "And tomorrow?"}


def test_openai_request_for_gemini_names_results_by_their_call() -> None:
    upstream = Translation(
        OpenAIChat(), "gemini", parsed(OpenAIChat(), OPENAI_REQUEST | {"stream": True})
    ).request("gemini-2.5-flash")
    assert upstream.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    body = json.loads(upstream.body)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    config = body["generationConfig"]
    assert config == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 300,
        "stopSequences": ["END"],
    }
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == WEATHER
    user, model, result = body["contents"]
    assert user["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert model == {
        "role": "model",
        "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}],
    }
    assert result["parts"][0] == {"functionResponse": {"name": "weather", "response": {"temp": 3}}}
    assert result["parts"][1] == {"text": "And tomorrow?"}


def test_structured_output_maps_to_each_providers_field() -> None:
    schema = {
        "type": "object",
        "properties": {"headline": {"type": "string"}},
        "required": ["headline"],
        "additionalProperties": False,
    }
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Post", "schema": schema, "strict": True},
        },
    }
    for_anthropic = sent(OpenAIChat(), "anthropic", parsed(OpenAIChat(), request), "c")
    assert for_anthropic["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    for_gemini = sent(OpenAIChat(), "gemini", parsed(OpenAIChat(), request), "g")
    assert for_gemini["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    # Gemini's OpenAPI-style responseSchema becomes JSON Schema for the others.
    gemini_request = {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"n": {"type": "INTEGER", "nullable": True}},
                "propertyOrdering": ["n"],
            },
        },
    }
    body = sent(Gemini(), "openai", parsed(Gemini(), gemini_request, "gemini-x"), "m")
    assert body["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "properties": {"n": {"type": ["integer", "null"]}},
    }
    anthropic_request = {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    body = sent(
        AnthropicMessages(),
        "openai",
        parsed(AnthropicMessages(), anthropic_request),
        "gpt-4o-mini",
    )
    assert body["response_format"]["json_schema"]["schema"] == schema


def test_anthropic_request_for_openai_splits_tool_results_into_tool_messages() -> None:
    request = {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "S"}],
        "stop_sequences": ["X"],
        "temperature": 0.5,
        "tools": [{"name": "weather", "input_schema": WEATHER}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 degrees"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "stream": True,
    }
    body = sent(
        AnthropicMessages(),
        "openai",
        parsed(AnthropicMessages(), request),
        "gpt-4o-mini",
    )
    assert body["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "3 degrees"},
        {"role": "user", "content": "Thanks"},
    ]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_completion_tokens"], body["stop"], body["model"]) == (
        100,
        ["X"],
        "gpt-4o-mini",
    )


def test_gemini_request_for_anthropic_gives_calls_ids_results_match() -> None:
    request = {
        "systemInstruction": {"parts": [{"text": "S"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 3}}}],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                        },
                    }
                ]
            }
        ],
        "generationConfig": {"maxOutputTokens": 64, "topK": 5},
    }
    body = sent(
        Gemini(),
        "anthropic",
        parsed(Gemini(), request, "gemini-2.5-flash"),
        "claude-haiku-4-5",
    )
    call = body["messages"][1]["content"][0]
    result = body["messages"][2]["content"][0]
    assert call["type"] == "tool_use"
    assert result["type"] == "tool_result"
    assert call["id"] == result["tool_use_id"] == gemini_tr.call_id(1, 0)
    assert body["tools"][0]["input_schema"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    assert (body["system"], body["max_tokens"], body["top_k"]) == ("S", 64, 5)


@pytest.mark.parametrize(
    ("client", "payload", "model", "provider", "field"),
    [
        (
            OpenAIChat(),
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 5}},
            None,
            "anthropic",
            "'logit_bias'",
        ),
        (
            OpenAIChat(),
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2},
            None,
            "gemini",
            "'n'",
        ),
        (
            OpenAIChat(),
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
                        ],
                    }
                ],
            },
            None,
            "gemini",
            "'messages[0].content[0].image_url'",
        ),
        (
            AnthropicMessages(),
            {
                "model": "c",
                "max_tokens": 5,
                "top_k": 3,
                "messages": [{"role": "user", "content": "x"}],
            },
            None,
            "openai",
            "'top_k'",
        ),
        (
            AnthropicMessages(),
            {
                "model": "c",
                "max_tokens": 5,
                "thinking": {"type": "enabled"},
                "messages": [{"role": "user", "content": "x"}],
            },
            None,
            "openai",
            "'thinking'",
        ),
        (
            Gemini(),
            {
                "contents": [{"role": "user", "parts": [{"text": "x"}]}],
                "tools": [{"googleSearch": {}}],
            },
            "gemini-2.5-flash",
            "openai",
            "'tools[0]'",
        ),
        (
            OpenAIResponses(),
            {"model": "m", "input": "x", "previous_response_id": "resp_1"},
            None,
            "anthropic",
            "'previous_response_id'",
        ),
        (
            OpenAIResponses(),
            {"model": "m", "input": "x", "tools": [{"type": "web_search"}]},
            None,
            "gemini",
            "'tools[0]'",
        ),
    ],
)
def test_what_a_target_cannot_express_is_refused_naming_the_field(
    client: Any, payload: dict[str, Any], model: str | None, provider: Any, field: str
) -> None:
    with pytest.raises(Untranslatable) as refused:
        Translation(client, provider, parsed(client, payload, model)).request("target-model")
    assert refused.value.kind is ErrorKind.INVALID_REQUEST
    assert field in str(refused.value)


# -- answers --------------------------------------------------------------------------------

ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 7,
        "cache_read_input_tokens": 4,
        "cache_creation_input_tokens": 2,
    },
}


def test_anthropic_answer_for_an_openai_client() -> None:
    status, body = answering(OpenAIChat(), "anthropic").answer(
        200, json.dumps(ANTHROPIC_ANSWER).encode(), 1
    )
    answer = json.loads(body)
    assert status == 200
    assert answer["model"] == "claude-haiku-4-5"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_9",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    # OpenAI's prompt tokens include cached input; Anthropic's input_tokens do not.
    assert answer["usage"]["prompt_tokens"] == 16
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    assert answer["usage"]["completion_tokens"] == 7
    assert "_cache_write_tokens" not in answer["usage"]


def test_anthropic_answer_for_a_gemini_client_and_back_keeps_usage() -> None:
    _status, body = answering(Gemini(), "anthropic").answer(
        200, json.dumps(ANTHROPIC_ANSWER).encode(), 1
    )
    answer = json.loads(body)
    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
    ]
    assert answer["usageMetadata"] == {
        "promptTokenCount": 16,
        "candidatesTokenCount": 7,
        "totalTokenCount": 23,
        "cachedContentTokenCount": 4,
    }
    assert answer["modelVersion"] == "claude-haiku-4-5"


def test_gemini_answer_for_an_anthropic_client() -> None:
    gemini_answer = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "Hi."}]}, "finishReason": "MAX_TOKENS"}
        ],
        "usageMetadata": {
            "promptTokenCount": 9,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 1,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    }
    _status, body = answering(AnthropicMessages(), "gemini").answer(
        200, json.dumps(gemini_answer).encode(), 1
    )
    answer = json.loads(body)
    assert answer["content"] == [{"type": "text", "text": "Hi."}]
    assert answer["stop_reason"] == "max_tokens"
    assert answer["model"] == "gemini-2.5-flash"
    assert answer["usage"] == {
        "input_tokens": 8,
        "output_tokens": 6,
        "cache_read_input_tokens": 1,
        "cache_creation_input_tokens": 0,
    }


def test_openai_answer_for_an_anthropic_client_with_refusal_finish() -> None:
    openai_answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "No."},
                "finish_reason": "content_filter",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    _, body = answering(AnthropicMessages(), "openai").answer(
        200, json.dumps(openai_answer).encode(), 1
    )
    answer = json.loads(body)
    assert (answer["stop_reason"], answer["id"]) == ("refusal", "msg_1")


@pytest.mark.parametrize(
    ("client", "provider", "status", "body", "want_status", "want"),
    [
        (
            OpenAIChat(),
            "anthropic",
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            503,
            "Overloaded",
        ),
        (
            AnthropicMessages(),
            "openai",
            429,
            b'{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}',
            429,
            "rate_limit_error",
        ),
        (
            Gemini(),
            "anthropic",
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}',
            400,
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_provider_errors_reach_the_client_in_its_dialect(
    client: Any, provider: Any, status: int, body: bytes, want_status: int, want: str
) -> None:
    got_status, got = answering(client, provider).answer(status, body, 1)
    assert got_status == want_status
    assert want in got.decode()
    shape = json.loads(got)
    if client.provider_type == "anthropic":
        assert shape["type"] == "error"
    else:
        assert set(shape["error"]) >= {"message", "code"}


# -- streams --------------------------------------------------------------------------------


def anthropic_stream() -> list[bytes]:
    def ev(name: str, data: dict[str, Any]) -> bytes:
        return encode(json.dumps(data | {"type": name}), event=name)

    return [
        ev(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "model": "claude-haiku-4-5",
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                }
            },
        ),
        ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ev("ping", {}),
        ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
        ev("content_block_stop", {"index": 0}),
        ev(
            "content_block_start",
            {
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {},
                },
            },
        ),
        ev(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        ),
        ev(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}},
        ),
        ev("content_block_stop", {"index": 1}),
        ev("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ev("message_stop", {}),
    ]


def run_stream(translation: Translation, chunks: list[bytes]) -> list[bytes]:
    """Feed chunks one by one; what the client got after each."""
    stream = translation.stream(1)
    parser = SSEParser()
    return [b"".join(stream.feed(e) for e in parser.feed(chunk)) for chunk in chunks]


def test_anthropic_stream_to_openai_client_chunk_by_chunk() -> None:
    request = parsed(
        OpenAIChat(),
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    outputs = run_stream(Translation(OpenAIChat(), "anthropic", request), anthropic_stream())
    # Each text delta is sent on as soon as it arrives, not at the end.
    assert b"Hel" in outputs[3]
    assert b"lo" in outputs[4]
    got = events(b"".join(outputs))
    assert got[-1] == (None, "[DONE]")
    chunks = [data for _, data in got[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    calls = [
        tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert calls[0]["id"] == "toolu_1"
    assert calls[0]["function"]["name"] == "weather"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"city": "Oslo"}'
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 9
    assert chunks[-1]["usage"]["prompt_tokens"] == 10


def test_anthropic_stream_to_gemini_client_ends_with_finish_and_usage() -> None:
    request = parsed(
        Gemini(),
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
        "gemini-2.5-flash",
        stream=True,
    )
    outputs = run_stream(Translation(Gemini(), "anthropic", request), anthropic_stream())
    chunks = [data for _, data in events(b"".join(outputs))]
    assert b"Hel" in outputs[3]
    text = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert text == "Hello"
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}
    ]
    assert last["usageMetadata"]["candidatesTokenCount"] == 9
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])


def openai_stream() -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return encode(
            json.dumps(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )
        )

    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi "}),
        chunk({"content": "there"}),
        chunk({}, "stop"),
        encode(
            json.dumps(
                {
                    "id": "chatcmpl-1",
                    "choices": [],
                    "model": "gpt-4o-mini",
                    "usage": {
                        "prompt_tokens": 8,
                        "completion_tokens": 2,
                        "total_tokens": 10,
                        "prompt_tokens_details": {"cached_tokens": 3},
                    },
                }
            )
        ),
        encode("[DONE]"),
    ]


def test_openai_stream_to_anthropic_client_is_a_well_formed_event_sequence() -> None:
    request = parsed(
        AnthropicMessages(),
        {
            "model": "claude-x",
            "max_tokens": 10,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    outputs = run_stream(Translation(AnthropicMessages(), "openai", request), openai_stream())
    assert b"Hi " in outputs[1]
    got = events(b"".join(outputs))
    names = [name for name, _ in got]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta = got[6][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"] == {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 0,
    }
    assert got[0][1]["message"]["model"] == "gpt-4o-mini"


def test_gemini_stream_to_openai_client_without_usage_unless_asked() -> None:
    def chunk(parts: list[Any], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
        if finish:
            candidate["finishReason"] = finish
        return encode(
            json.dumps(
                {
                    "candidates": [candidate],
                    "modelVersion": "gemini-2.5-flash",
                    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
                }
            )
        )

    request = parsed(
        OpenAIChat(),
        {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    outputs = run_stream(
        Translation(OpenAIChat(), "gemini", request),
        [
            chunk([{"text": "Hi"}]),
            chunk([{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}], "STOP"),
        ],
    )
    got = events(b"".join(outputs))
    assert got[-1] == (None, "[DONE]")
    chunks = [data for _, data in got[:-1]]
    assert all(c["choices"] for c in chunks)  # the client did not ask for usage
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hi"
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call["id"] == gemini_tr.call_id(1, 0)
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_provider_error_event_becomes_the_clients_error_event() -> None:
    request = parsed(
        OpenAIChat(),
        {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    failing = [
        *anthropic_stream()[:4],
        encode(
            json.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
            event="error",
        ),
    ]
    got = events(b"".join(run_stream(Translation(OpenAIChat(), "anthropic", request), failing)))
    last = got[-1][1]
    assert last["error"]["code"] == "unavailable"
    assert "Overloaded" in last["error"]["message"]
    assert (None, "[DONE]") not in got  # no clean-looking end after a failure
