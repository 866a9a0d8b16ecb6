"""The in-process backend: least-recently-used entries, bounded by bytes, with a TTL.

Bounded by bytes rather than count because answers range from a few hundred
bytes to hundreds of kilobytes; ``max_bytes`` is what an operator sizes the
sidecar's memory limit by. Time is passed in so tests need no clock.
"""

from __future__ import annotations

from collections import OrderedDict

from proxy.cache.entry import Entry


class ByteLRU:
    def __init__(self, max_bytes: int, ttl_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: float) -> Entry | None:
        """The live entry under ``key`` (now most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.created_at >= self.ttl_seconds:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> bool:
        """Store ``entry``, evicting the least recently used; False if it alone is too big."""
        if entry.size > self.max_bytes:
            return False
        if key in self._entries:
            self._remove(key)
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
        return True

    def flush(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _remove(self, key: str) -> None:
        self.bytes -= self._entries.pop(key).size
