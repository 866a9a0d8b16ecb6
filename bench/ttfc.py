"""Time to first chunk of a streamed answer, measured by a raw HTTP/1.1 client.

One keep-alive connection per target; requests are sequential and alternate
between the direct upstream and the sidecar, so that drift in the machine's load
hits both sides alike. The clock runs from just before the request is written to
the first SSE chunk read in full; the rest of the stream is then drained (and
checked to end with ``[DONE]``) before the next request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import uvloop

from bench.load import PATH, STREAM_BODY


@dataclass
class Connection:
    name: str
    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    request: bytes

    @classmethod
    async def open(cls, name: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = STREAM_BODY.encode()
        request = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nAuthorization: Bearer sk-app\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return cls(name, port, reader, writer, request)

    async def first_chunk_seconds(self) -> float:
        started = time.perf_counter()
        self.writer.write(self.request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
            raise RuntimeError(f"{self.name}: unexpected stream answer head {head!r}")
        first = await self._chunk()
        elapsed = time.perf_counter() - started
        if not first.startswith(b"data: "):
            raise RuntimeError(f"{self.name}: first chunk is not an SSE event: {first!r}")
        rest = bytearray(first)
        while chunk := await self._chunk():
            rest += chunk
        if not rest.endswith(b"data: [DONE]\n\n"):
            raise RuntimeError(f"{self.name}: stream did not end with [DONE]: {bytes(rest)!r}")
        return elapsed

    async def _chunk(self) -> bytes:
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    def close(self) -> None:
        self.writer.close()


async def _measure(direct_port: int, sidecar_port: int, count: int) -> dict[str, list[float]]:
    direct = await Connection.open("direct", direct_port)
    sidecar = await Connection.open("sidecar", sidecar_port)
    try:
        for _ in range(20):  # warm-up: connection pools, first-call paths
            await direct.first_chunk_seconds()
            await sidecar.first_chunk_seconds()
        times: dict[str, list[float]] = {"direct": [], "sidecar": []}
        for _ in range(count):
            times["direct"].append(await direct.first_chunk_seconds())
            times["sidecar"].append(await sidecar.first_chunk_seconds())
        return times
    finally:
        direct.close()
        sidecar.close()


def measure(direct_port: int, sidecar_port: int, count: int) -> dict[str, list[float]]:
    """Seconds to first chunk, `count` streams each way, alternating direct and sidecar."""
    return uvloop.run(_measure(direct_port, sidecar_port, count))


async def _paced(ports: dict[str, int], count: int, gap: float) -> dict[str, list[float]]:
    conns = [await Connection.open(name, port) for name, port in ports.items()]
    try:
        for _ in range(20):
            for conn in conns:
                await conn.first_chunk_seconds()
        times: dict[str, list[float]] = {conn.name: [] for conn in conns}
        for _ in range(count):
            for conn in conns:
                times[conn.name].append(await conn.first_chunk_seconds())
            await asyncio.sleep(gap)
        return times
    finally:
        for conn in conns:
            conn.close()


def paced(ports: dict[str, int], count: int, gap: float) -> dict[str, list[float]]:
    """Seconds to first chunk at a pace that leaves the sidecars idle between requests:
    one request to each port in turn, then `gap` seconds of quiet, `count` times."""
    return uvloop.run(_paced(ports, count, gap))
