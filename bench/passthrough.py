"""The baseline every proxy is measured against: a bare aiohttp passthrough.

What any aiohttp proxy must do at the least -- read the request, POST it upstream on
a pooled connection, copy the answer back (a JSON body whole, a stream chunk by chunk)
-- with nothing else: no parsing, no routing, no metrics. On uvloop, as the sidecar.
The sidecar's added latency is held to a multiple of this one's (DESIGN.md, Targets).

Run as ``python -m bench.passthrough UPSTREAM_PORT [--port N]``: prints its port once it
listens.
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import aiohttp
import uvloop
from aiohttp import web


def build(upstream: str) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.StreamResponse:
        assert session is not None
        body = await request.read()
        async with session.post(
            upstream + request.path,
            data=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-bench"},
        ) as answer:
            if answer.content_type != "text/event-stream":
                return web.Response(
                    status=answer.status, body=await answer.read(),
                    content_type=answer.content_type,
                )  # fmt: skip
            response = web.StreamResponse(status=answer.status)
            response.content_type = answer.content_type
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def pool(app: web.Application):  # type: ignore[no-untyped-def]
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await session.close()

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    app.cleanup_ctx.append(pool)
    return app


async def serve(upstream_port: int, port: int) -> None:
    runner = web.AppRunner(build(f"http://127.0.0.1:{upstream_port}"), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    uvloop.run(serve(args.upstream_port, args.port))


if __name__ == "__main__":
    main()
