"""A fake Azure OpenAI resource: OpenAI's bodies under Azure's addressing.

Deployment paths (``/openai/deployments/{deployment}/chat/completions``), a required
``api-version`` query parameter (Azure answers 404 "Resource not found" without
one), the key in an ``api-key`` header or a Microsoft Entra token as a bearer, and
Azure's error body (``{"error": {"code": "429", "message": ...}}``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.base import Fault, Route
from tests.fakes.openai import FakeOpenAI

#: The api-version the tests configure (a GA version).
API_VERSION = "2024-10-21"


class FakeAzureOpenAI(FakeOpenAI):
    kind = "azure-openai"

    def __init__(self, key: str = "0123456789abcdef0123456789abcdef") -> None:
        super().__init__(key, prefix=None)
        base = "/openai/deployments/{deployment}"
        self.route(f"{base}/chat/completions", self._versioned(self.chat))
        self.route(f"{base}/embeddings", self._versioned(self.embeddings))

    def _versioned(self, handler: Route) -> Route:
        async def serve(request: web.Request, payload: Any, fault: Fault) -> web.StreamResponse:
            if request.query.get("api-version") != API_VERSION:
                return self.error(404, "Resource not found")
            return await handler(request, payload, fault)

        return serve

    def key_of(self, request: web.Request) -> str | None:
        if "api-key" in request.headers:
            return request.headers["api-key"]
        return super().key_of(request)  # an Entra token: Authorization: Bearer

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": str(status), "message": message}}
