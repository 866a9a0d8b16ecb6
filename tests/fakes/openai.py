"""A fake OpenAI API: chat completions, responses, embeddings; OpenAI error bodies."""

from __future__ import annotations

import base64
import struct
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeProvider, Fault, Reply, sse

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          429: "requests", 500: "server_error", 503: "server_error"}  # fmt: skip
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}


class FakeOpenAI(FakeProvider):
    kind = "openai"
    answer_text = "Real OpenAI answer."
    #: What a Responses call asking for JSON (`text.format` json_schema) gets; tests set it.
    json_answer = '{"answer": "Real OpenAI JSON."}'

    def __init__(
        self, key: str = "sk-real-openai-test-0000000000", prefix: str | None = "/v1"
    ) -> None:
        """`prefix`: where the API lives (an OpenAI-compatible server's base path; None:
        a subclass routes its own paths)."""
        super().__init__(key)
        self._count = 0
        if prefix is None:
            return
        self.route(f"{prefix}/chat/completions", self.chat)
        self.route(f"{prefix}/responses", self.responses)
        self.route(f"{prefix}/embeddings", self.embeddings)

    def key_of(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": _TYPES.get(status, "server_error"),
                          "param": None, "code": _CODES.get(status)}}  # fmt: skip

    def ok_headers(self) -> dict[str, str]:
        self._count += 1
        return {
            "x-request-id": f"req_fake{self._count:06d}",
            "openai-processing-ms": "12",
            "x-ratelimit-limit-requests": "5000",
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-limit-tokens": "800000",
            "x-ratelimit-remaining-tokens": "799000",
        }

    def usage(self, payload: Any) -> dict[str, Any]:
        """The usage the answer reports; tests override it to control what is billed."""
        return {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip

    async def chat(self, request: web.Request, payload: Any, fault: Fault) -> web.StreamResponse:
        model = payload.get("model", "gpt-4o-mini")
        usage = self.usage(payload)
        head = {"id": "chatcmpl-fake", "created": 1700000000, "model": model}
        reply = self.reply(request, payload, self.answer_text)
        if reply.tool or reply.finish != "stop" or reply.text != self.answer_text:
            return await self._chat_reply(request, payload, fault, head, usage, reply)
        if not payload.get("stream"):
            return web.json_response(
                head | {
                    "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": self.answer_text,
                                             "refusal": None}}],
                    "usage": usage,
                },
                headers=self.ok_headers(),
            )  # fmt: skip

        # As OpenAI does: asked for usage, every chunk carries "usage" (null until the
        # last chunk, which has no choices and the usage).
        include_usage = (payload.get("stream_options") or {}).get("include_usage")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            body = head | {"object": "chat.completion.chunk", "choices": [choice]}
            return sse(body | {"usage": None} if include_usage else body)

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": w}) for w in ["Real ", "OpenAI ", "answer."]]
        chunks.append(chunk({}, "stop"))
        if include_usage:
            chunks.append(
                sse(head | {"object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        chunks.append(sse("[DONE]"))
        return await self.stream(request, chunks, fault)

    async def _chat_reply(
        self, request: web.Request, payload: Any, fault: Fault, head: dict[str, Any],
        usage: dict[str, Any], reply: Reply,
    ) -> web.StreamResponse:  # fmt: skip
        """A bad answer (`x-fake-answer`) in chat's shape, whole or streamed."""
        refusal = reply.text if reply.finish == "refusal" else None
        content = None if refusal or reply.tool else reply.text
        calls = [{"id": "call_fake", "type": "function",
                  "function": {"name": reply.tool[0], "arguments": reply.tool[1]}}
                 ] if reply.tool else None  # fmt: skip
        finish = {"length": "length"}.get(reply.finish, "tool_calls" if calls else "stop")
        if not payload.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                head | {"object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "finish_reason": finish, "logprobs": None, "message": message}]},
                headers=self.ok_headers(),
            )  # fmt: skip

        def chunk(delta: dict[str, Any], done: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": done}
            return sse(head | {"object": "chat.completion.chunk", "choices": [choice]})

        delta: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
        if calls:
            delta["tool_calls"] = [calls[0] | {"index": 0}]
        chunks = [chunk(delta), chunk({}, finish), sse("[DONE]")]
        return await self.stream(request, chunks, fault)

    async def responses(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        text_format = ((payload.get("text") or {}).get("format") or {}).get("type")
        reply = self.reply(
            request, payload, self.json_answer if text_format == "json_schema" else self.answer_text
        )
        text = reply.text
        part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
        if reply.finish == "refusal":
            part = {"type": "refusal", "refusal": text}
        item: dict[str, Any] = {"id": "msg_fake", "type": "message", "status": "completed",
                                "role": "assistant", "content": [part]}  # fmt: skip
        if reply.tool:
            name, arguments = reply.tool
            item = {"id": "fc_fake", "type": "function_call", "status": "completed",
                    "call_id": "call_fake", "name": name, "arguments": arguments}  # fmt: skip
        usage = {"input_tokens": 13, "input_tokens_details": {"cached_tokens": 3},
                 "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 2},
                 "total_tokens": 19}  # fmt: skip
        head = {"id": "resp_fake", "object": "response", "created_at": 1700000000,
                "model": payload.get("model", "gpt-4o-mini"), "error": None,
                "incomplete_details": None, "instructions": None, "metadata": {},
                "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "auto",
                "tools": [], "top_p": 1.0, "text": payload.get("text") or
                {"format": {"type": "text"}}}  # fmt: skip
        done = head | {"status": "completed", "output": [item], "usage": usage}
        if reply.finish == "length":
            done |= {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
        if not payload.get("stream"):
            return web.json_response(done, headers=self.ok_headers())
        pending = head | {"status": "in_progress", "output": [], "usage": None}
        where = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": pending}),
            ("response.in_progress", {"response": pending}),
            ("response.output_item.added",
             {"output_index": 0, "item": item | {"status": "in_progress", "content": []}}),
            ("response.content_part.added", where | {"part": part | {"text": ""}}),
        ]  # fmt: skip
        pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
        events += [("response.output_text.delta", where | {"delta": p, "logprobs": []})
                   for p in pieces]  # fmt: skip
        events += [
            ("response.output_text.done", where | {"text": text, "logprobs": []}),
            ("response.content_part.done", where | {"part": part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            (
                "response.incomplete" if reply.finish == "length" else "response.completed",
                {"response": done},
            ),
        ]
        chunks = [sse({"type": name, "sequence_number": n} | body, name)
                  for n, (name, body) in enumerate(events)]  # fmt: skip
        return await self.stream(request, chunks, fault)

    async def embeddings(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        given = payload.get("input")
        items = given if isinstance(given, list) and not isinstance(given[0], int) else [given]
        dimensions = payload.get("dimensions") or 8
        data = []
        for index, _ in enumerate(items):
            vector = [round(0.125 * (index + 1), 3)] * dimensions
            encoded: Any = vector
            if payload.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return web.json_response(
            {"object": "list", "data": data, "model": payload.get("model"),
             "usage": {"prompt_tokens": 7, "total_tokens": 7}},
            headers=self.ok_headers(),
        )  # fmt: skip
