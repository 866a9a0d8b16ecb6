"""A stored answer and its wire form (the same bytes in memory and in Redis).

A plain answer is its body; a stream is the SSE bytes exactly as the client
received them, so a replay is byte-equal to the first answer. The metadata says
which arm produced it (a hit answers as that arm) and what it cost (the spend a
hit saves).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal


class EntryError(ValueError):
    """Stored bytes are not an entry (a foreign or truncated Redis value)."""


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    content_type: str
    streamed: bool
    provider: str
    cost_usd: Decimal
    created_at: float
    body: bytes

    @property
    def size(self) -> int:
        """Bytes this entry accounts for against ``maxBytes``."""
        return len(self.body) + len(self.content_type) + len(self.provider) + 64


def dumps(entry: Entry) -> bytes:
    """One JSON header line, then the body bytes unchanged."""
    head = {
        "v": 1,
        "status": entry.status,
        "contentType": entry.content_type,
        "streamed": entry.streamed,
        "provider": entry.provider,
        "costUSD": str(entry.cost_usd),
        "createdAt": entry.created_at,
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + entry.body


def loads(data: bytes) -> Entry:
    """The entry in ``data``; EntryError when it is not one this version wrote."""
    head_bytes, sep, body = data.partition(b"\n")
    try:
        head = json.loads(head_bytes)
        if not sep or not isinstance(head, dict) or head.get("v") != 1:
            raise EntryError("not a version-1 cache entry")
        return Entry(
            status=int(head["status"]),
            content_type=str(head["contentType"]),
            streamed=bool(head["streamed"]),
            provider=str(head["provider"]),
            cost_usd=Decimal(head["costUSD"]),
            created_at=float(head["createdAt"]),
            body=body,
        )
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise EntryError(f"unreadable cache entry: {exc}") from exc
