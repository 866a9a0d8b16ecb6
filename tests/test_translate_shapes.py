"""What translated answers carry that the mock's own renderers once wrote, now that the mock
answers every dialect through these translators: ids in the client dialect's form, the
fields its SDK reads, cut answers marked as such, and Gemini's JSON-array stream."""

from __future__ import annotations

import json
from typing import Any

from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.dialects.gemini import Gemini, JsonArrayStream
from proxy.dialects.openai_chat import OpenAIChat
from proxy.dialects.openai_responses import OpenAIResponses
from proxy.sse import encode
from proxy.translate import Translation
from tests.test_translate import events, parsed, run_stream, sent

CALL = {
    "id": "call_abc",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
}


def openai_answer(message: dict[str, Any], finish: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
        }
    ).encode()


def openai_stream(deltas: list[dict[str, Any]], finish: str) -> list[bytes]:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o-mini"}  # fmt: skip

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return encode(json.dumps(head | {"choices": [choice]}))

    usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    return [
        *(chunk(delta) for delta in deltas),
        chunk({}, finish),
        encode(json.dumps(head | {"choices": [], "usage": usage})),
        encode("[DONE]"),
    ]


ANTHROPIC_ASK = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}


def test_an_anthropic_client_gets_anthropic_shaped_ids_that_hold_across_turns() -> None:
    client = AnthropicMessages()
    translation = Translation(client, "openai", parsed(client, ANTHROPIC_ASK))
    called = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    _, body = translation.answer(200, openai_answer(called, "tool_calls"), 1)
    answer = json.loads(body)
    assert answer["id"] == "msg_1"
    assert answer["content"][0]["id"] == "toolu_abc"

    streamed = Translation(client, "openai", parsed(client, ANTHROPIC_ASK | {"stream": True}))
    opening = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    got = events(b"".join(run_stream(streamed, openai_stream([opening], "tool_calls"))))
    assert [name for name, _ in got][:2] == ["message_start", "ping"]
    assert got[0][1]["message"]["id"] == "msg_1"
    starts = [data for name, data in got if name == "content_block_start"]
    assert starts[0]["content_block"]["id"] == "toolu_abc"

    # The next turn names the call by the id the client saw: the provider gets it alike.
    follow = ANTHROPIC_ASK | {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [answer["content"][0]]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_abc", "content": "3 degrees"}]},
        ]
    }  # fmt: skip
    turns = sent(client, "openai", parsed(client, follow), "gpt-4o-mini")["messages"]
    assert turns[1]["tool_calls"][0]["id"] == turns[2]["tool_call_id"] == "toolu_abc"


def test_a_gemini_client_gets_a_bare_response_id_and_a_text_part_in_every_chunk() -> None:
    client = Gemini()
    ask = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    translation = Translation(client, "openai", parsed(client, ask, "g"))
    _, body = translation.answer(
        200, openai_answer({"role": "assistant", "content": "Hi"}, "stop"), 1
    )
    assert json.loads(body)["responseId"] == "1"

    streamed = Translation(client, "openai", parsed(client, ask, "g", stream=True))
    deltas = [{"role": "assistant", "content": ""}, {"content": "Hi"}, {"content": " there"}]
    chunks = [
        data for _, data in events(b"".join(run_stream(streamed, openai_stream(deltas, "stop"))))
    ]
    assert all(c["responseId"] == "1" for c in chunks)
    assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
        [{"text": "Hi"}], [{"text": " there"}], [{"text": ""}]
    ]  # fmt: skip
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


RESPONSES_ASK = {"model": "m", "input": "x", "user": "u-1", "max_output_tokens": 4}


def test_a_responses_client_sees_a_cut_answer_as_incomplete_with_openai_ids() -> None:
    client = OpenAIResponses()
    translation = Translation(client, "anthropic", parsed(client, RESPONSES_ASK))
    hub_message = {"role": "assistant", "content": "A short"}
    _, body = Translation(client, "openai", parsed(client, RESPONSES_ASK)).answer(
        200, openai_answer(hub_message, "length"), 1
    )
    response = json.loads(body)
    assert (response["id"], response["status"]) == ("resp_1", "incomplete")
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["created_at"] == 1700000000, "when the provider made it"
    assert (response["user"], response["reasoning"]) == ("u-1", {"effort": None, "summary": None})
    assert response["output"][0]["id"] == "msg_1"
    assert response["output"][0]["status"] == "incomplete", "the cut message, as OpenAI marks it"

    _, body = translation.answer(
        200,
        json.dumps({"id": "msg_9", "type": "message", "role": "assistant", "model": "claude",
                    "content": [{"type": "tool_use", "id": "call_abc", "name": "weather",
                                 "input": {"city": "Oslo"}}],
                    "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 2}}
                   ).encode(),
        1,
    )  # fmt: skip
    item = json.loads(body)["output"][0]
    assert (item["id"], item["call_id"], item["status"]) == ("fc_abc", "call_abc", "completed")


def test_a_responses_stream_cut_short_ends_incomplete_item_and_response() -> None:
    client = OpenAIResponses()
    streamed = Translation(client, "openai", parsed(client, RESPONSES_ASK | {"stream": True}))
    deltas = [{"role": "assistant", "content": ""}, {"content": "A"}, {"content": " short"}]
    got = events(b"".join(run_stream(streamed, openai_stream(deltas, "length"))))
    done = [data for name, data in got if name == "response.output_item.done"]
    assert [d["item"]["status"] for d in done] == ["incomplete"]
    assert done[0]["item"]["id"] == "msg_1"
    last_name, last = got[-1]
    assert last_name == "response.incomplete"
    assert last["response"]["output"][0]["status"] == "incomplete"
    assert last["response"]["created_at"] == 1700000000
    assert [d["sequence_number"] for _, d in got] == list(range(len(got)))


def test_a_json_array_stream_is_written_as_its_chunks_arrive() -> None:
    chunks = [{"candidates": [{"content": {"parts": [{"text": str(i)}]}}]} for i in range(3)]
    stream = b"".join(encode(json.dumps(c)) for c in chunks)
    array = JsonArrayStream()
    first_end = stream.index(b"\n\n") + 2
    # Split mid-event: nothing until the first event is whole, then it at once.
    assert array.feed(stream[:5]) == b""
    head = array.feed(stream[5:first_end])
    assert head.startswith(b"[")
    assert json.loads(head[1:]) == chunks[0]
    written = head + array.feed(stream[first_end:]) + array.close()
    assert json.loads(written) == chunks
    empty = JsonArrayStream()
    assert json.loads(empty.feed(b"") + empty.close()) == []


def gemini_chunk(text: str, usage: dict[str, int], finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    return encode(json.dumps({"candidates": [candidate], "modelVersion": "gemini-2.5-flash",
                              "usageMetadata": usage}))  # fmt: skip


def test_a_prompt_count_known_up_front_reaches_anthropics_message_start() -> None:
    """Gemini counts the prompt in its first chunk; Anthropic's message_start reports it
    (uncached), and an OpenAI client, whose stream has no such place, never sees it."""
    first = {"promptTokenCount": 12, "cachedContentTokenCount": 4}
    last = first | {"candidatesTokenCount": 3, "totalTokenCount": 15}
    stream = [gemini_chunk("Hi", first), gemini_chunk(" there", last, "STOP")]
    client = AnthropicMessages()
    to_anthropic = Translation(client, "gemini", parsed(client, ANTHROPIC_ASK | {"stream": True}))
    got = events(b"".join(run_stream(to_anthropic, stream)))
    assert got[0][1]["message"]["usage"] == {
        "input_tokens": 8,
        "output_tokens": 0,
        "cache_read_input_tokens": 4,
        "cache_creation_input_tokens": 0,
    }
    assert got[-2][1]["usage"]["input_tokens"] == 8, "and message_delta the same"

    openai_ask = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    to_openai = Translation(OpenAIChat(), "gemini", parsed(OpenAIChat(), openai_ask))
    raw = b"".join(run_stream(to_openai, stream))
    assert b"_usage_so_far" not in raw
    assert b"Hi" in raw
