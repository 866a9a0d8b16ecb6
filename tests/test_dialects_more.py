"""Pure checks of the Responses, embeddings and Gemini dialects and the mock's vectors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.dialects import BadRequest, ErrorKind, Usage, guess_dialect
from proxy.dialects.gemini import Gemini
from proxy.dialects.openai_embeddings import OpenAIEmbeddings
from proxy.dialects.openai_responses import OpenAIResponses
from proxy.mock.vectors import cosine, embed
from proxy.sse import Event, SSEParser

RESPONSES = OpenAIResponses()
EMBEDDINGS = OpenAIEmbeddings()
GEMINI = Gemini()


@pytest.mark.parametrize(
    ("name", "terminal"),
    [
        ("response.completed", True),
        ("response.incomplete", True),  # cut by max_output_tokens: complete, not broken
        ("response.failed", True),  # the provider told the client itself
        ("error", True),
        ("response.output_text.delta", False),
        ("response.in_progress", False),
    ],
)
def test_responses_stream_ends(name: str, terminal: bool) -> None:
    assert RESPONSES.is_terminal(Event(name, "{}")) is terminal


def test_responses_usage_from_the_terminal_event() -> None:
    usage = {"input_tokens": 20, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 4},
             "output_tokens_details": {"reasoning_tokens": 3}}  # fmt: skip
    event = Event("response.completed", json.dumps({"response": {"usage": usage}}))
    assert RESPONSES.usage_from_event(event) == Usage(20, 9, 4, 0, 3)
    assert RESPONSES.usage_from_body(json.dumps({"usage": usage}).encode()) == Usage(20, 9, 4, 0, 3)
    created = Event("response.created", json.dumps({"response": {"usage": None}}))
    assert RESPONSES.usage_from_event(created) is None


def test_responses_stream_error_has_nested_and_flat_fields() -> None:
    (event,) = SSEParser().feed(RESPONSES.stream_error(ErrorKind.UPSTREAM, "cut"))
    body = json.loads(event.data)
    assert event.event == "error"
    assert body["type"] == "error"
    assert body["error"]["message"] == body["message"] == "cut"


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "m"},
        {"model": "m", "input": ""},
        {"model": "m", "input": []},
        {"input": "hi"},
        {"model": "m", "input": "hi", "max_output_tokens": 0},
    ],
)
def test_responses_bad_requests(payload: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        RESPONSES.parse(json.dumps(payload).encode())


@pytest.mark.parametrize(
    "given_input",
    ["text", ["a", "b"], [1, 2, 3], [[1, 2], [3]]],
)
def test_embeddings_accepts_openai_input_shapes(given_input: object) -> None:
    parsed = EMBEDDINGS.parse(json.dumps({"model": "m", "input": given_input}).encode())
    assert parsed.stream is False


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "m", "input": ""},
        {"model": "m", "input": []},
        {"model": "m", "input": [[]]},
        {"model": "m", "input": [{"text": "x"}]},
        {"model": "m", "input": "x", "encoding_format": "int8"},
        {"model": "m", "input": "x", "dimensions": 0},
    ],
)
def test_embeddings_bad_requests(payload: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        EMBEDDINGS.parse(json.dumps(payload).encode())


def test_gemini_takes_model_and_stream_from_the_url() -> None:
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}],
                       "generationConfig": {"maxOutputTokens": 50}}).encode()  # fmt: skip
    parsed = GEMINI.parse(body, path_model="gemini-2.5-pro", query_stream=True)
    assert (parsed.model, parsed.stream, parsed.max_tokens) == ("gemini-2.5-pro", True, 50)
    with pytest.raises(BadRequest, match="contents"):
        GEMINI.parse(b'{"contents": []}', path_model="gemini-2.5-pro")


def test_gemini_stream_is_complete_only_with_a_finish_reason() -> None:
    middle = {"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0}]}
    last = {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}]}
    assert not GEMINI.is_terminal(Event(None, json.dumps(middle)))
    assert GEMINI.is_terminal(Event(None, json.dumps(last)))
    assert GEMINI.is_terminal(Event(None, '{"error": {"code": 500}}'))


def test_gemini_usage_counts_thoughts_as_output() -> None:
    metadata = {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                "cachedContentTokenCount": 2}  # fmt: skip
    expected = Usage(input_tokens=10, output_tokens=12, cache_read_tokens=2, reasoning_tokens=7)
    assert GEMINI.usage_from_event(Event(None, json.dumps({"usageMetadata": metadata}))) == expected
    array = [{"usageMetadata": {"promptTokenCount": 10}}, {"usageMetadata": metadata}]
    assert GEMINI.usage_from_body(json.dumps(array).encode()) == expected


def test_gemini_errors_use_google_status_names() -> None:
    body = json.loads(GEMINI.error_body(ErrorKind.RATE_LIMITED, "slow down"))
    assert body == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    (event,) = SSEParser().feed(GEMINI.stream_error(ErrorKind.UPSTREAM, "cut"))
    assert event.data.startswith('{"error":'), "google-genai raises only on a leading error key"


def test_unknown_gemini_paths_are_answered_as_gemini() -> None:
    assert guess_dialect("/v1beta/models/x:countTokens", {}).name == GEMINI.name
    assert guess_dialect("/v1/models/x:countTokens", {"x-goog-api-key": "k"}).name == GEMINI.name


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(min_value=1, max_value=512))
def test_vectors_are_unit_length_and_deterministic(text: str, dimensions: int) -> None:
    vector = embed(text, dimensions)
    assert len(vector) == dimensions
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-9
    assert embed(text, dimensions) == vector


def test_vectors_reflect_shared_words() -> None:
    a = embed("blue waterproof hiking jacket", 1536)
    b = embed("waterproof jacket for hiking, blue", 1536)
    c = embed("interest rates and mortgage refinancing", 1536)
    assert cosine(a, b) > 0.6
    assert abs(cosine(a, c)) < 0.15
