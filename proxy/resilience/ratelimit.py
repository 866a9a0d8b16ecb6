"""Per-provider rate limits: requests and tokens per minute, plus what the provider says.

Two token buckets per provider (RPM and TPM), each holding at most one minute of
the limit and refilling continuously. The configured limit is cluster-wide; in
standalone mode a sidecar enforces all of it. Under the operator, the effective
config carries this sidecar's share (the limit divided by the connected sidecars)
and the buckets are sized to it; when the share changes (a sidecar joins or
leaves) they are resized in place (`resize`), keeping what was already used.
A request *reserves* one request and its estimated tokens (`reserve`): when the
buckets hold enough it goes at once; when they will within `maxWaitMs` it takes
them on credit and waits that long (bounded; every later request queues behind
that reservation, so waits are fair and never over-admit); when they will not,
it is refused and the chain moves on to the
next backend. Estimates are corrected with the usage read from the answer.

The provider's own view wins when it is stricter. Low remaining quota in
`x-ratelimit-remaining-*` (OpenAI) or `anthropic-ratelimit-*-remaining` drains the
local buckets down to it; a 429, or a remaining count of 0, pauses the provider
until its `retry-after`, else until the quota's own reset (`x-ratelimit-reset-*`,
Go durations such as ``6m0s``; `anthropic-ratelimit-*-reset`, RFC 3339 times), else
for one second. A paused provider is waited for only up to `retry.maxBackoffMs`,
like a `retry-after` on a retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from proxy.config.model import RateLimit

#: Header pairs (remaining requests, remaining tokens) providers report.
_REMAINING = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-tokens-remaining"),
)
#: The header saying when each of those quotas is full again.
_RESET = {
    "x-ratelimit-remaining-requests": "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens": "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining": "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining": "anthropic-ratelimit-tokens-reset",
}
_DEFAULT_PAUSE = 1.0
#: A Go duration as OpenAI writes its resets: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``.
_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?"
                          r"(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")  # fmt: skip
#: Longest reset believed: a header claiming more is a misreading, not a reason to stop.
_MAX_RESET = 3600.0


class Bucket:
    """A token bucket allowing debt: `level` below 0 is capacity already promised."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = per_minute
        self.rate = per_minute / 60
        self.level = per_minute
        self._at = now

    def refill(self, now: float) -> None:
        if now > self._at:
            self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
            self._at = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` is available (0 if it is)."""
        self.refill(now)
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate)


class Limiter:
    """One provider's limits as seen by this sidecar."""

    def __init__(self, limit: RateLimit | None, now: float) -> None:
        self.limit = limit or RateLimit()
        rpm, tpm = self.limit.requests_per_minute, self.limit.tokens_per_minute
        self.requests = Bucket(rpm, now) if rpm else None
        self.tokens = Bucket(tpm, now) if tpm else None
        self.paused_until = 0.0
        self.refused = 0

    def resize(self, limit: RateLimit | None, now: float) -> None:
        """Adopt a new limit (a new share), keeping what was used of the old one: a bucket
        never holds more than the new limit, and debt already promised stays owed."""
        self.limit = limit or RateLimit()
        rpm, tpm = self.limit.requests_per_minute, self.limit.tokens_per_minute
        self.requests = _resized(self.requests, rpm, now)
        self.tokens = _resized(self.tokens, tpm, now)

    def reserve(
        self, tokens: int, now: float, max_wait: float, max_pause: float | None = None
    ) -> float | None:
        """Reserve one request of `tokens` estimated tokens: the wait, or None if refused.

        `max_wait` is the most the caller can wait (the smaller of `maxWaitMs` and
        what is left of the request's deadline); `max_pause` the most it waits out
        a pause the provider asked for (the chain uses `retry.maxBackoffMs`, the
        same bound as for a `retry-after` on a retry).
        """
        wait = max(0.0, self.paused_until - now)
        if max_pause is not None and wait > max_pause:
            self.refused += 1
            return None
        for bucket, amount in ((self.requests, 1.0), (self.tokens, float(tokens))):
            if bucket is not None:
                wait = max(wait, bucket.wait_for(amount, now))
        if wait > max_wait:
            self.refused += 1
            return None
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= tokens
        return wait

    def settle(self, estimated: int, actual: int, now: float) -> None:
        """Correct a reservation with the tokens the answer really used."""
        if self.tokens is not None and actual:
            self.tokens.refill(now)
            self.tokens.level += estimated - actual

    def observe(
        self,
        status: int | None,
        headers: Mapping[str, str],
        asked: float | None,
        now: float,
        wall_now: float = 0.0,
    ) -> None:
        """Learn from a provider's answer: its remaining quota, its 429s and its retry-after.

        A 429 pauses the provider (for its `retry-after`, else until the soonest quota
        reset it reports, else a second); so does a 5xx that says `retry-after`
        (maintenance, overload): it asked everyone to wait. A quota at 0 pauses until
        that quota's reset. `wall_now` (Unix time) reads Anthropic's reset timestamps.
        """
        exhausted: list[float] = []
        resets: list[float] = []
        for requests_header, tokens_header in _REMAINING:
            for bucket, header in ((self.requests, requests_header), (self.tokens, tokens_header)):
                remaining = _int(headers.get(header))
                if remaining is None:
                    continue
                reset = reset_after(headers.get(_RESET[header]), wall_now)
                if reset is not None:
                    resets.append(reset)
                if remaining == 0:
                    exhausted.append(reset if reset is not None else _DEFAULT_PAUSE)
                elif bucket is not None:
                    bucket.refill(now)
                    bucket.level = min(bucket.level, float(remaining))
        if asked is not None and (status == 429 or (status is not None and status >= 500)):
            self.pause(asked, now)
        elif status == 429:
            self.pause(max(exhausted) if exhausted else min(resets, default=_DEFAULT_PAUSE), now)
        if exhausted:
            self.pause(asked if asked is not None else max(exhausted), now)

    def pause(self, seconds: float, now: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)


def _resized(bucket: Bucket | None, per_minute: int | None, now: float) -> Bucket | None:
    if not per_minute:
        return None
    fresh = Bucket(per_minute, now)
    if bucket is not None:  # what was used of the old limit stays used
        bucket.refill(now)
        fresh.level = min(fresh.capacity, bucket.level + fresh.capacity - bucket.capacity)
    return fresh


def reset_after(text: str | None, wall_now: float) -> float | None:
    """Seconds until a quota resets, from OpenAI's Go duration or Anthropic's RFC 3339 time.

    None when absent or unreadable; bounded by `_MAX_RESET`.
    """
    if not text:
        return None
    text = text.strip()
    match = _GO_DURATION.match(text)
    if match is not None and any(match.groups()):
        hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
        return min(hours * 3600 + minutes * 60 + seconds + millis / 1000, _MAX_RESET)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, when.timestamp() - wall_now), _MAX_RESET)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def estimate_tokens(body_bytes: int, max_tokens: int | None) -> int:
    """Tokens a request may use, before it runs: ~4 bytes a token in, plus its output cap."""
    return body_bytes // 4 + (max_tokens or 0)
