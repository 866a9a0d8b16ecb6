"""Incremental Server-Sent Events parsing.

The relay sees a stream as arbitrary byte chunks; usage sits in one event near
the end. This parser is fed chunks as they pass and yields whole events, so the
relay can forward bytes untouched and still read what it needs. It never holds
more than one incomplete event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    event: str | None
    data: str


class SSEParser:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buffer += chunk
        while True:
            end, size = _boundary(self._buffer)
            if end < 0:
                return
            block, self._buffer = self._buffer[:end], self._buffer[end + size :]
            event = _parse_block(block)
            if event is not None:
                yield event


def _boundary(buffer: bytes) -> tuple[int, int]:
    """Index and length of the first blank-line separator (LF or CRLF)."""
    candidates = [(buffer.find(sep), len(sep)) for sep in (b"\n\n", b"\r\n\r\n")]
    found = [c for c in candidates if c[0] >= 0]
    return min(found) if found else (-1, 0)


def _parse_block(block: bytes) -> Event | None:
    name: str | None = None
    data: list[str] = []
    for raw in block.decode("utf-8", "replace").splitlines():
        if not raw or raw.startswith(":"):
            continue
        field, _, value = raw.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if name is None and not data:
        return None
    return Event(name, "\n".join(data))


def encode(data: str, event: str | None = None) -> bytes:
    """One SSE event as bytes, in the framing the providers use."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()
