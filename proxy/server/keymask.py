"""Mask the sidecar's provider key wherever an upstream answer echoes it.

A provider's 401 may quote the key it was sent (`Incorrect API key provided: sk-...`),
in a body, a header or a stream event; relayed as is, the app, a log or a recorded
cassette would hold the sidecar's secret. Streams are masked across chunk borders:
a chunk's tail that could begin the key is held back until the next chunk decides.
"""

from __future__ import annotations

from collections.abc import Mapping

MASK = b"[redacted provider key]"


class KeyMask:
    """Masks one key in bodies, header values and a stream of chunks."""

    def __init__(self, key: str) -> None:
        self.key = key.encode()
        self.held = b""

    def body(self, data: bytes) -> bytes:
        return data.replace(self.key, MASK) if self.key and self.key in data else data

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        text, mask = self.key.decode(), MASK.decode()
        if not text:
            return dict(headers)
        return {k: v.replace(text, mask) for k, v in headers.items()}

    def chunk(self, data: bytes) -> bytes:
        """The part of a stream safe to send now; the rest waits for `flush` or more data."""
        data = self.body(self.held + data)
        keep = _partial_key_suffix(data, self.key)
        self.held = data[len(data) - keep :] if keep else b""
        return data[: len(data) - keep]

    def flush(self) -> bytes:
        held, self.held = self.held, b""
        return held


def _partial_key_suffix(data: bytes, key: bytes) -> int:
    """Length of the longest tail of `data` that is a proper prefix of `key`."""
    for length in range(min(len(key) - 1, len(data)), 0, -1):
        if key.startswith(data[-length:]):
            return length
    return 0
