"""Masking secrets out of bytes on their way to the app, a log or a cassette.

A provider can echo the key it was sent (a 401 body quoting ``Bearer sk-...``, a debug
header): that key is the sidecar's, and must never reach the app. `Redactor` replaces
every occurrence of the given secrets, in a whole body or in a stream fed chunk by
chunk -- a secret split across two network chunks included: the end of a chunk that
could be the start of a secret waits for the next chunk (only then, so an SSE event,
which ends with a blank line, is never held back). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = b"[redacted by llm-rollout]"
#: Shorter strings are not secrets worth masking (and would mask ordinary text).
MIN_SECRET = 8


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s.encode() for s in secrets if len(s) >= MIN_SECRET},
                               key=len, reverse=True)  # fmt: skip
        self._pending = b""

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def whole(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, MASK)
        return data

    def text(self, value: str) -> str:
        return self.whole(value.encode()).decode(errors="replace") if self else value

    def feed(self, chunk: bytes) -> bytes:
        """What can be sent of the stream so far; a possible secret's start is kept."""
        data = self.whole(self._pending + chunk)
        hold = self._held(data)
        self._pending = data[len(data) - hold :] if hold else b""
        return data[: len(data) - hold] if hold else data

    def close(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self.whole(rest)

    def _held(self, data: bytes) -> int:
        """The length of the longest end of `data` that begins some secret."""
        longest = 0
        for secret in self._secrets:
            start = max(0, len(data) - len(secret) + 1)
            at = data.find(secret[:1], start)
            while at != -1:
                if secret.startswith(data[at:]):
                    longest = max(longest, len(data) - at)
                    break
                at = data.find(secret[:1], at + 1)
        return longest
