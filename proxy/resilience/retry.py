"""Retry policy: which failures are worth another try, and how long to wait first.

Retryable are the statuses the official SDKs retry themselves -- 408, 409, 429
and every 5xx (529 "overloaded" included) -- plus refused connections and
timeouts (`status=None`). Anything else (400, 401, 404, ...) is the answer: the
same request would fail the same way at any provider.

The wait before retry *n* (1-based) is full jitter over an exponential ceiling,
``uniform(0, min(maxBackoff, initialBackoff * 2**(n-1)))``, unless the provider
said how long to wait (`retry-after-ms`, then `retry-after` in seconds or as an
HTTP date): then exactly that. A provider asking for more than `maxBackoffMs` is
not waited for at all -- the chain moves to the next backend instead, so one
slow "come back in 60 s" never holds a request.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

from proxy.config.model import Retry


def retryable(status: int | None) -> bool:
    """Whether a failure may succeed on another try (None: no answer at all)."""
    return status is None or status in (408, 409, 429) or status >= 500


def backoff(retry_number: int, policy: Retry, draw: float) -> float:
    """Seconds to wait before retry `retry_number` (1 = first retry); `draw` is in [0, 1)."""
    ceiling = min(policy.max_backoff_ms, policy.initial_backoff_ms * 2.0 ** (retry_number - 1))
    return draw * ceiling / 1000


def retry_after(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds the provider asked to wait, or None if it did not say (or said nonsense).

    `headers` must be case-insensitive (aiohttp's are); `wall_now` is Unix time, for
    the HTTP-date form.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            value = -1.0
        if value >= 0:
            return value / 1000
    text = headers.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - wall_now)
    return seconds if seconds >= 0 else None


def delay(retry_number: int, policy: Retry, draw: float, asked: float | None) -> float | None:
    """The wait before the next retry, or None when the provider asked for too long."""
    if asked is None:
        return backoff(retry_number, policy, draw)
    return asked if asked <= policy.max_backoff_ms / 1000 else None
