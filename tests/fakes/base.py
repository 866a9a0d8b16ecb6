"""What every fake provider shares: request recording, key checks, scripted faults.

A test scripts faults per request (`provider.faults.append(Fault(...))`); each
incoming request pops the next one, or runs clean when the queue is empty. Faults
cover what providers really do: error statuses with their own bodies and
rate-limit headers, a slow first byte, a stream that stalls, a stream cut mid-way.

Bad answers on demand, for the quality gate (HTTP 200, well-formed, but unusable):
the app sends the header `x-fake-answer: MODE` (the sidecar relays it), or a test
sets `provider.answer_mode = MODE` for every request. MODE is one of:

- `empty`: no text at all
- `refusal`: the provider's own refusal marker (OpenAI `refusal`, Anthropic
  `stop_reason: refusal`, Gemini `finishReason: SAFETY`)
- `truncated`: a few words cut at the token limit (`length`, `max_tokens`, `MAX_TOKENS`)
- `bad_json`: text that is not JSON (`{"headline": "Cut`)
- `schema_mismatch`: JSON that fits no schema with required fields (`{"unexpected": true}`)
- `bad_tool_args`: a call to the request's first tool with `{"unexpected": true}` as
  arguments (invalid when the tool's schema requires a field)
- `unknown_tool`: a call to `no_such_tool`
- `avoided` or `avoided:WORD`: text with the word a brand avoids (default `cheap`)
- `long_post`: 3,500 characters, over every post limit (X 280 ... LinkedIn 3,000)
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One scripted misbehaviour for one request."""

    status: int | None = None  # answer this status with the provider's error body
    headers: dict[str, str] = field(default_factory=dict)  # e.g. retry-after
    first_byte_delay: float = 0.0  # seconds before anything is sent
    cut_after_chunks: int | None = None  # stream: drop the connection after N chunks
    stall_after_chunks: int | None = None  # stream: go silent after N chunks
    error_after_chunks: int | None = None  # stream: the provider's own error event after N
    stall_seconds: float = 30.0


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What a fake answers: text, how it ended, or one tool call (name, JSON arguments)."""

    text: str
    finish: str = "stop"  # "stop", "length" or "refusal"
    tool: tuple[str, str] | None = None


def first_tool(payload: Any) -> str:
    """The name of the first tool a request offers, in any provider's shape."""
    for tool in payload.get("tools") or []:
        for found in (tool.get("function") or {}, tool, *(tool.get("functionDeclarations") or [])):
            if isinstance(found, dict) and found.get("name"):
                return str(found["name"])
    return "no_tool_offered"


def bad_reply(mode: str, payload: Any) -> Reply:
    """The bad answer `mode` names (see the module docstring)."""
    if mode.startswith("avoided"):
        word = mode.partition(":")[2] or "cheap"
        return Reply(f"Our {word} offer ends soon. Order today.")
    replies = {
        "empty": Reply(""),
        "refusal": Reply("I'm sorry, but I can't help with that.", "refusal"),
        "truncated": Reply("Here is the start of a long answer that", "length"),
        "bad_json": Reply('{"headline": "Cut'),
        "schema_mismatch": Reply('{"unexpected": true}'),
        "bad_tool_args": Reply("", tool=(first_tool(payload), '{"unexpected": true}')),
        "unknown_tool": Reply("", tool=("no_such_tool", "{}")),
        "long_post": Reply(("Long post about our launch. " * 125).strip()),
    }
    if mode not in replies:
        raise ValueError(f"unknown x-fake-answer mode {mode!r}")
    return replies[mode]


Route = Callable[[web.Request, Any, Fault], Awaitable[web.StreamResponse]]


class FakeProvider:
    """A provider's HTTP API on loopback. Subclasses add routes and body shapes."""

    kind = "fake"

    def __init__(self, key: str = "sk-real-provider-key") -> None:
        self.key = key
        #: More keys this provider accepts (a test of a key pool).
        self.also_accepted: set[str] = set()
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        #: A bad answer for every request (see the module docstring); None answers well.
        self.answer_mode: str | None = None
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- to be provided by subclasses --------------------------------------------
    def key_of(self, request: web.Request) -> str | None:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def ok_headers(self) -> dict[str, str]:
        return {}

    def stream_error_event(self) -> bytes:
        """The event this provider sends when it fails in the middle of a stream."""
        return sse(self.error_body(500, "The server had an error while processing your request."))

    def reply(self, request: web.Request, payload: Any, good: str) -> Reply:
        """`good` as the answer, unless a bad one is asked for (header or `answer_mode`)."""
        mode = request.headers.get("x-fake-answer") or self.answer_mode
        return bad_reply(mode, payload) if mode else Reply(good)

    # -- shared machinery -------------------------------------------------------
    def route(self, path: str, handler: Route) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self.requests.append(
                Recorded(
                    request.method, request.path, dict(request.query), dict(request.headers), body
                )
            )
            fault = self.faults.popleft() if self.faults else Fault()
            if fault.first_byte_delay:
                await asyncio.sleep(fault.first_byte_delay)
            if self.key_of(request) not in {self.key, *self.also_accepted}:
                return self.error(401, "Incorrect API key provided.")
            if fault.status is not None:
                return self.error(fault.status, f"scripted {fault.status}", fault.headers)
            try:
                payload = json.loads(body)
            except ValueError:
                return self.error(400, "We could not parse the JSON body of your request.")
            return await handler(request, payload, fault)

        self.app.router.add_post(path, serve)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            self.error_body(status, message),
            status=status,
            headers=self.ok_headers() | (headers or {}),
        )

    async def stream(
        self, request: web.Request, chunks: list[bytes], fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            | self.ok_headers()
        )
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if fault.cut_after_chunks is not None and index == fault.cut_after_chunks:
                assert request.transport is not None
                request.transport.close()  # no terminating chunk: the client sees a cut
                return response
            if fault.error_after_chunks is not None and index == fault.error_after_chunks:
                await response.write(self.stream_error_event())  # as providers do when
                await response.write_eof()  # they fail mid-answer (e.g. overloaded)
                return response
            if fault.stall_after_chunks is not None and index == fault.stall_after_chunks:
                await asyncio.sleep(fault.stall_seconds)
                if request.transport is None or request.transport.is_closing():
                    return response  # the client gave up on the silence
            await response.write(chunk)
        await response.write_eof()
        return response

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeProvider:
        """Listen on `port` (0: a free one; a stopped fake's old port brings it back)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()
