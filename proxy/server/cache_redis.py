"""The shared cache backend: one Redis for every sidecar of a rollout.

A cache must never make a request fail or wait: every Redis call is bounded by
``cache.redis.timeoutMs`` (no client-side retries), and a failure or a slow answer
is a miss. Failures are counted every time but logged once per outage (and once
when Redis answers again), so a dead Redis does not flood the log.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from proxy.cache.key import epoch_prefix
from proxy.config.model import CacheRedis

log = logging.getLogger("llm_rollout.cache")


class RedisStore:
    def __init__(self, spec: CacheRedis, password: str | None, errors: Counter) -> None:
        self.spec = spec
        self.timeout = spec.timeout_ms / 1000
        self.errors = errors
        self.down = False
        parts = urlsplit(spec.url)
        self.where = f"{parts.hostname}:{parts.port or 6379}"  # never the password
        self.client = aioredis.Redis.from_url(
            spec.url,
            password=password,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def name(self, rollout: str, key: str) -> str:
        return f"{self.spec.key_prefix}{rollout}:{key}"

    async def get(self, name: str) -> bytes | None:
        try:
            async with asyncio.timeout(self.timeout):
                value = await self.client.get(name)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("get", error)
            return None
        self._answered()
        return value if isinstance(value, bytes) else None

    async def put(self, name: str, data: bytes, ttl_seconds: int) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.set(name, data, ex=ttl_seconds)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("set", error)
            return
        self._answered()

    async def flush(self, rollout: str) -> int | None:
        """Delete this rollout's entries, of every cache epoch (other rollouts sharing the
        Redis keep theirs); None if Redis failed first (what was left expires with its TTL)."""
        return await self._unlink(rollout, keep=None)

    async def prune(self, rollout: str, epoch: int, ttl_seconds: int) -> int | None:
        """After `kubectl llmrollout cache-flush`: delete this rollout's entries of earlier
        cache epochs, by one sidecar only. They are out of reach already (``epoch_key``), so
        this only frees their memory before their TTL would; the first sidecar to claim the
        epoch's marker does it, the others (None) need not scan the same keys again. The
        marker lives as long as an entry does: past that, nothing stale is left to delete."""
        marker = f"{self.spec.key_prefix}{rollout}#pruned:{epoch}"
        try:
            async with asyncio.timeout(self.timeout):
                claimed = await self.client.set(marker, b"1", nx=True, ex=max(1, ttl_seconds))
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("set", error)
            return None
        self._answered()
        return await self._unlink(rollout, keep=epoch_prefix(epoch)) if claimed else None

    async def _unlink(self, rollout: str, keep: str | None) -> int | None:
        """Delete the rollout's names, except those of the epoch `keep` names; each call to
        Redis bounded by the socket timeout, a batch of names at a time."""
        kept = self.name(rollout, keep).encode() if keep is not None else None
        removed, batch = 0, []
        try:
            async for name in self.client.scan_iter(match=self.name(rollout, "*"), count=500):
                if kept is None or not name.startswith(kept):
                    batch.append(name)
                if len(batch) >= 500:
                    removed += int(await self.client.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await self.client.unlink(*batch))
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("delete", error)
            return None
        self._answered()
        return removed

    async def close(self) -> None:
        await self.client.aclose()

    def _failed(self, operation: str, error: BaseException) -> None:
        self.errors.inc()
        if not self.down:
            self.down = True
            log.warning(
                "cache: Redis at %s failed a %s (%s); requests are served as cache misses "
                "until it answers again", self.where, operation, type(error).__name__,
            )  # fmt: skip

    def _answered(self) -> None:
        if self.down:
            self.down = False
            log.info("cache: Redis at %s answers again", self.where)


def error_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "llm_rollout_cache_redis_errors",
        "Redis calls of the response cache that failed or timed out (each one served as a miss).",
        registry=registry,
    )
