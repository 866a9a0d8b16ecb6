"""A fake Anthropic API: messages (object and named-event stream), Anthropic error bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeProvider, Fault, sse

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
          500: "api_error", 529: "overloaded_error"}  # fmt: skip


class FakeAnthropic(FakeProvider):
    kind = "anthropic"

    def __init__(self, key: str = "sk-ant-real-test-000000000000") -> None:
        super().__init__(key)
        self.route("/v1/messages", self.messages)
        self._count = 0

    def key_of(self, request: web.Request) -> str | None:
        return request.headers.get("x-api-key")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": _TYPES.get(status, "api_error"),
                                           "message": message}}  # fmt: skip

    def stream_error_event(self) -> bytes:
        return sse(self.error_body(529, "Overloaded"), "error")

    def ok_headers(self) -> dict[str, str]:
        self._count += 1
        return {
            "request-id": f"req_fakeant{self._count:06d}",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-tokens-limit": "400000",
            "anthropic-ratelimit-tokens-remaining": "399000",
        }

    async def messages(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        if "anthropic-version" not in request.headers:
            return self.error(400, "anthropic-version: header is required")
        model = payload.get("model", "claude-sonnet-5")
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "stop_sequence": None}  # fmt: skip
        reply = self.reply(request, payload, "Real Anthropic answer.")
        stop = {"length": "max_tokens", "refusal": "refusal"}.get(reply.finish, "end_turn")
        block: dict[str, Any] = {"type": "text", "text": reply.text}
        if reply.tool:
            block = {"type": "tool_use", "id": "toolu_fake", "name": reply.tool[0],
                     "input": json.loads(reply.tool[1])}  # fmt: skip
            stop = "tool_use"
        content = [] if reply.finish == "refusal" else [block]
        if not payload.get("stream"):
            return web.json_response(
                message | {
                    "content": content,
                    "stop_reason": stop,
                    "usage": {"input_tokens": 12, "output_tokens": 5,
                              "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
                },
                headers=self.ok_headers(),
            )  # fmt: skip
        start = message | {"content": [], "stop_reason": None,
                           "usage": {"input_tokens": 12, "output_tokens": 1}}  # fmt: skip
        words = [reply.text[i : i + 9] for i in range(0, len(reply.text), 9)]
        opened: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": w} for w in words]
        if reply.tool:
            opened = block | {"input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": reply.tool[1]}]
        chunks = [
            sse({"type": "message_start", "message": start}, "message_start"),
            sse({"type": "content_block_start", "index": 0,
                 "content_block": opened}, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ]  # fmt: skip
        chunks += [
            sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta")
            for d in (deltas if content else [])
        ]  # fmt: skip
        chunks += [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse({"type": "message_delta", "delta": {"stop_reason": stop,
                 "stop_sequence": None}, "usage": {"output_tokens": 5}}, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]  # fmt: skip
        return await self.stream(request, chunks, fault)
