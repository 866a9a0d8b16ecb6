"""The sidecar's response cache: looks a real-arm request up, stores a real answer.

The rules, keys and memory bound are ``proxy.cache``; this is the edge that reads
an aiohttp request and builds or keeps an aiohttp response. A stream is caught by
a tap the relay feeds with the bytes it sends the client; it is stored only when
the provider ended it properly, and replayed at full speed as one body. Entries
live in this process (a byte-bounded LRU) or, with ``cache.redis``, in a Redis
shared by every sidecar of the rollout (``cache_redis``). With ``cache.enabled:
false`` the data path pays one attribute check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.cache.entry import Entry, EntryError, dumps, loads
from proxy.cache.key import cache_key, epoch_key
from proxy.cache.lru import ByteLRU
from proxy.cache.rules import Decision, decide
from proxy.config.model import ApiKey, Cache, CacheRedis, Provider
from proxy.server.cache_redis import RedisStore, error_counter
from proxy.server.keys import KeyStore, MissingKey

log = logging.getLogger("llm_rollout.cache")


@dataclass(slots=True)
class StreamTap:
    """The SSE bytes a stream sent its client, and whether the provider finished it."""

    content_type: str = "text/event-stream"
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False


CACHE_TAP = web.RequestKey("cache_tap", StreamTap)


@dataclass(frozen=True, slots=True)
class Lookup:
    """One request's cache verdict: the key to store under (None: do not store)."""

    result: str  # hit | miss | bypass, as in x-llm-cache
    key: str | None
    entry: Entry | None


BYPASS = Lookup("bypass", None, None)


class ResponseCache:
    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall clock: an entry's age is shown to clients
        #: Keys name the rollout so that a shared store never mixes two rollouts' answers.
        self.rollout = "standalone"
        #: The operator's cache epoch (standalone: 0); every key starts with it (`epoch_key`).
        self.epoch = 0
        self.lru = ByteLRU(max_bytes=Cache().max_bytes, ttl_seconds=Cache().ttl_seconds)
        self.requests = Counter(
            "llm_rollout_cache_requests",
            "Real-arm requests by cache result: hit, miss or bypass.",
            ["result"],
            registry=registry,
        )
        self.saved_usd = Counter(
            "llm_rollout_cache_saved_usd",
            "Spend a cache hit saved: what the stored answer cost when it was bought.",
            registry=registry,
        )
        self.entries = Gauge("llm_rollout_cache_entries", "Entries held.", registry=registry)
        self.bytes = Gauge("llm_rollout_cache_bytes", "Bytes held (bounded by maxBytes).",
                           registry=registry)  # fmt: skip
        self.flushes = Counter(
            "llm_rollout_cache_flushes",
            "Flushes this sidecar applied, by who asked: operator (kubectl llmrollout "
            "cache-flush) or admin (POST /cache/flush).",
            ["source"],
            registry=registry,
        )
        self.epoch_gauge = Gauge(
            "llm_rollout_cache_epoch",
            "The cache epoch in force; equal to the rollout's status.cacheEpoch once this "
            "sidecar has taken the last cache-flush.",
            registry=registry,
        )
        self.redis_errors = error_counter(registry)
        self.redis: RedisStore | None = None
        self._background: set[asyncio.Task[None]] = set()

    def configure(self, spec: Cache, keys: KeyStore) -> None:
        """Apply new bounds (entries over a smaller bound go at the next store) and backend."""
        self.lru.max_bytes = spec.max_bytes
        self.lru.ttl_seconds = spec.ttl_seconds
        wanted = spec.redis if spec.enabled else None
        if (self.redis.spec if self.redis else None) == wanted:
            return
        if self.redis is not None:
            self._close(self.redis)
        self.redis = None if wanted is None else RedisStore(
            wanted, _password(wanted, keys), self.redis_errors
        )  # fmt: skip

    async def flush(self) -> int | None:
        """Drop this rollout's entries (admin); how many there were, None if Redis failed."""
        self.flushes.labels("admin").inc()
        if self.redis is not None:
            return await self.redis.flush(self.rollout)
        return self._drop_local()

    def new_epoch(self, epoch: int, joining: bool) -> None:
        """Take the operator's cache epoch: entries of earlier ones are out of reach at once.

        A running sidecar (a `kubectl llmrollout cache-flush`) also drops its in-process
        entries and, with Redis, offers to delete the rollout's stale entries there (one
        sidecar of the rollout does, `RedisStore.prune`). A sidecar joining (a start or a
        restart) only takes the epoch and deletes nothing shared: a restart never empties
        the cache the other pods use, and what a flush left behind expires with its TTL.
        """
        self.epoch = epoch
        self.epoch_gauge.set(epoch)
        dropped = self._drop_local()  # unreachable now; local, so no one else loses anything
        if joining:
            return
        self.flushes.labels("operator").inc()
        log.info("cache: flushed at the operator's request (cache epoch %d): %d in-process "
                 "entries dropped", epoch, dropped)  # fmt: skip
        if self.redis is not None:
            self._spawn(self._prune(self.redis, epoch))

    async def _prune(self, store: RedisStore, epoch: int) -> None:
        removed = await store.prune(self.rollout, epoch, int(self.lru.ttl_seconds))
        if removed is not None:
            log.info("cache: deleted %d entries of earlier cache epochs of %s from Redis at %s",
                     removed, self.rollout, store.where)  # fmt: skip

    def _drop_local(self) -> int:
        dropped = len(self.lru)
        self.lru.flush()
        self._gauge()
        return dropped

    async def lookup(
        self,
        spec: Cache,
        request: web.Request,
        *,
        tenant: str,
        dialect: str,
        streamed: bool,
        provider: Provider,
        body: bytes,
    ) -> Lookup:
        """Hit, miss (with the key to store the answer under) or bypass."""
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return self._count(BYPASS)
        headers = {k.lower(): v for k, v in request.headers.items()}
        decision = decide(document, headers, spec.when)
        if decision is Decision.BYPASS:
            return self._count(BYPASS)
        key = epoch_key(self.epoch, cache_key(
            rollout=self.rollout,
            tenant=tenant if spec.scope == "tenant" else None,
            dialect=dialect,
            path=_framed_path(request),
            streamed=streamed,
            provider=provider,
            body=document,
        ))  # fmt: skip
        entry = await self._get(key) if decision is Decision.LOOKUP else None
        if entry is not None:
            self.saved_usd.inc(float(entry.cost_usd))
            return self._count(Lookup("hit", key, entry))
        if streamed:
            request[CACHE_TAP] = StreamTap()
        return self._count(Lookup("miss", key, None))

    def answer(self, entry: Entry, headers: dict[str, str]) -> web.Response:
        """The stored answer, as the arm that produced it, with its age."""
        headers |= {"x-llm-backend": entry.provider, "x-llm-cache": "hit", "x-llm-cost-usd": "0",
                    "age": str(int(max(0.0, self.clock() - entry.created_at)))}  # fmt: skip
        return web.Response(
            status=entry.status, body=entry.body, content_type=None,
            headers={"Content-Type": entry.content_type, **headers},
        )  # fmt: skip

    async def store(
        self,
        request: web.Request,
        lookup: Lookup,
        response: web.StreamResponse,
        backend: str,
        cost: Decimal | None,
    ) -> None:
        """Keep a successful, whole, real answer; never errors, cut streams or the mock's."""
        if lookup.key is None or backend == "mock" or response.status != 200:
            return
        tap = request.get(CACHE_TAP)
        if tap is not None:
            if not tap.complete:
                return
            content_type, body = tap.content_type, b"".join(tap.chunks)
        elif isinstance(response, web.Response) and isinstance(response.body, bytes):
            content_type = response.headers.get("Content-Type", "application/json")
            body = response.body
        else:
            return
        entry = Entry(
            status=200,
            content_type=content_type,
            streamed=tap is not None,
            provider=backend,
            cost_usd=cost if cost is not None else Decimal(0),
            created_at=self.clock(),
            body=body,
        )
        if self.redis is not None:
            ttl = int(self.lru.ttl_seconds)
            await self.redis.put(self.redis.name(self.rollout, lookup.key), dumps(entry), ttl)
            return
        self.lru.put(lookup.key, entry)
        self._gauge()

    async def _get(self, key: str) -> Entry | None:
        if self.redis is None:
            return self.lru.get(key, self.clock())
        data = await self.redis.get(self.redis.name(self.rollout, key))
        if data is None:
            return None
        try:
            return loads(data)
        except EntryError:
            return None  # not ours (or truncated): a miss, overwritten by the next store

    def _close(self, store: RedisStore) -> None:
        self._spawn(store.close())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()
            return  # no loop (start-up): nothing was ever opened
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _count(self, lookup: Lookup) -> Lookup:
        self.requests.labels(lookup.result).inc()
        return lookup

    def _gauge(self) -> None:  # in-process only; Redis is sized by its own maxmemory
        self.entries.set(len(self.lru))
        self.bytes.set(self.lru.bytes)


def _password(spec: CacheRedis, keys: KeyStore) -> str | None:
    if spec.secret_ref is None:
        return None
    try:
        return keys.get(ApiKey(secret_ref=spec.secret_ref))
    except MissingKey as error:
        log.warning("cache: Redis password %s/%s unreadable (%s); trying without one",
                    spec.secret_ref.name, spec.secret_ref.key, error)  # fmt: skip
        return None


def _framed_path(request: web.Request) -> str:
    """The path, and Gemini's ``alt`` when given: ``streamGenerateContent?alt=sse`` answers
    events, without it one JSON array, so the two must not share an entry. The rest of
    the query stays out (it may carry the app's ``key``)."""
    alt = request.query.get("alt")
    return request.path if alt is None else f"{request.path}?alt={alt}"
