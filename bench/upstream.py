"""A fake OpenAI upstream fast enough never to be the bottleneck of the benchmark.

A raw asyncio `Protocol` on uvloop speaking just enough HTTP/1.1 (keep-alive,
Content-Length request bodies) to answer ``POST /v1/chat/completions``
with a fixed chat completion, or -- when the body asks for ``"stream": true`` -- a
fixed SSE stream in chunked transfer encoding. No framework, no JSON parsing: the
answers are byte strings built once at import.

The first SSE event goes out with the headers; the rest follow `STREAM_GAP`
seconds later. A proxy that buffered the stream would therefore show at least that
gap in its added time to first chunk, so the streaming figure tests "unbuffered".

Run as ``python -m bench.upstream [--port N]``: it prints the bound port on one
line to stdout once it listens, and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import cast

import uvloop

#: Delay between the first SSE event and the rest of the stream.
STREAM_GAP = 0.002

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
    },
    separators=(",", ":"),
).encode()


def _chunk(delta: dict[str, str], finish: str | None, usage: dict[str, int] | None) -> bytes:
    event = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        event["usage"] = usage
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


EVENTS = [
    _chunk({"role": "assistant", "content": ""}, None, None),
    *(_chunk({"content": word}, None, None) for word in ("Hello", " from", " the", " bench.")),
    _chunk({}, "stop", {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}),
    b"data: [DONE]\n\n",
]


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"x-request-id: req-bench\r\n"
    b"Content-Length: %d\r\n\r\n" % len(_COMPLETION)
)
JSON_RESPONSE = _JSON_HEAD + _COMPLETION
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"x-request-id: req-bench\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + _http_chunk(EVENTS[0])
)
STREAM_TAIL = b"".join(_http_chunk(e) for e in EVENTS[1:]) + b"0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
#: An OTLP/HTTP collector's answer to an export: an empty ExportTraceServiceResponse.
OTLP_ACCEPTED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
)


class Upstream(asyncio.Protocol):
    """One client connection: parse requests off the buffer, answer each in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            self.answer(head, body)

    def answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if head.startswith(b"post /v1/traces"):  # the traced run's OTLP exports: a sink
            self.transport.write(OTLP_ACCEPTED)
        elif not head.startswith(b"post /v1/chat/completions"):
            self.transport.write(NOT_FOUND)
        elif b'"stream":true' in body or b'"stream": true' in body:
            self.transport.write(STREAM_HEAD)
            asyncio.get_running_loop().call_later(STREAM_GAP, self._finish_stream)
        else:
            self.transport.write(JSON_RESPONSE)

    def _finish_stream(self) -> None:
        if self.transport is not None:
            self.transport.write(STREAM_TAIL)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    try:
        uvloop.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
