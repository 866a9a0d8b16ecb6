"""A fake OpenAI API: chat completions (object and chunk stream), OpenAI error bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.base import FakeProvider, Fault, sse

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          429: "requests", 500: "server_error", 503: "server_error"}  # fmt: skip
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}


class FakeOpenAI(FakeProvider):
    kind = "openai"
    answer_text = "Real OpenAI answer."

    def __init__(self, key: str = "sk-real-openai") -> None:
        super().__init__(key)
        self.route("/v1/chat/completions", self.chat)
        self._count = 0

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

    async def chat(self, request: web.Request, payload: Any, fault: Fault) -> web.StreamResponse:
        model = payload.get("model", "gpt-4o-mini")
        usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15,
                 "prompt_tokens_details": {"cached_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
        head = {"id": "chatcmpl-fake", "created": 1700000000, "model": model}
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

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse(head | {"object": "chat.completion.chunk", "choices": [choice]})

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": w}) for w in ["Real ", "OpenAI ", "answer."]]
        chunks.append(chunk({}, "stop"))
        if (payload.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                sse(head | {"object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        chunks.append(sse("[DONE]"))
        return await self.stream(request, chunks, fault)
