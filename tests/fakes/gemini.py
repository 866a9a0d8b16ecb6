"""A fake Gemini API: generateContent, streamGenerateContent?alt=sse, Google error bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeProvider, Fault, Reply, sse

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}  # fmt: skip


class FakeGemini(FakeProvider):
    kind = "gemini"
    answer_text = "Real Gemini answer."
    #: What a call asking for JSON (`responseMimeType: application/json`) gets; tests set it.
    json_answer = '{"answer": "Real Gemini JSON."}'

    def __init__(self, key: str = "AIzaRealGeminiTestKey000000000000000000") -> None:
        super().__init__(key)
        for version in ("v1", "v1beta"):
            self.route(f"/{version}/models/{{model}}:generateContent", self.generate)
            self.route(f"/{version}/models/{{model}}:streamGenerateContent", self.stream_generate)

    def key_of(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message,
                          "status": _STATUS.get(status, "UNKNOWN")}}  # fmt: skip

    def _reply(self, request: web.Request, payload: Any) -> Reply:
        config = payload.get("generationConfig") or {}
        wants_json = config.get("responseMimeType") == "application/json"
        return self.reply(request, payload, self.json_answer if wants_json else self.answer_text)

    @staticmethod
    def _chunk(request: web.Request, text: str, finish: bool, reply: Reply) -> dict[str, Any]:
        part: dict[str, Any] = {"text": text}
        if reply.tool:
            part = {"functionCall": {"name": reply.tool[0], "args": json.loads(reply.tool[1])}}
        parts = [] if reply.finish == "refusal" else [part]
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        usage: dict[str, Any] = {"promptTokenCount": 9, "totalTokenCount": 9}
        if finish:
            candidate["finishReason"] = {"length": "MAX_TOKENS", "refusal": "SAFETY"}.get(
                reply.finish, "STOP"
            )
            usage = {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 2,
                     "cachedContentTokenCount": 1, "totalTokenCount": 15}  # fmt: skip
        model = request.match_info["model"]
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                "responseId": "fake-gemini"}  # fmt: skip

    async def generate(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        reply = self._reply(request, payload)
        return web.json_response(self._chunk(request, reply.text, True, reply))

    async def stream_generate(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        if request.query.get("alt") != "sse":
            return self.error(400, "this fake streams only with ?alt=sse")
        reply = self._reply(request, payload)
        text = reply.text
        pieces = [text[i : i + 6] for i in range(0, len(text), 6)] or [""]
        chunks = [sse(self._chunk(request, p, False, reply)) for p in pieces[:-1]]
        chunks.append(sse(self._chunk(request, pieces[-1], True, reply)))
        return await self.stream(request, chunks, fault)
