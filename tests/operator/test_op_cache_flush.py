"""`kubectl llmrollout cache-flush` end to end: the plugin, the operator under kopf, the
control channel, and sidecars that then answer a previously cached request with a miss;
with Redis, the stale entries are deleted by one sidecar, and a restart deletes nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import openai
import pytest
import redis.asyncio as aioredis
from conftest import NS, Cluster, provider_spec

from proxy.config import parse_spec
from proxy.server.control import ControlClient
from proxy.server.serve import Address, Sidecar
from tests.redis_server import RedisServer

NAME = "marketing-content"
ASK = [{"role": "user", "content": "Describe the blue mug"}]
PRUNED = "entries of earlier cache epochs"


async def ask(sidecar: Sidecar) -> str:
    """A deterministic request through the openai SDK; its x-llm-cache."""
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{sidecar.data_port}/v1", api_key="app-key", max_retries=0
    )
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, temperature=0
        )
    finally:
        await client.close()
    assert raw.parse().choices[0].message.content == "real answer"
    return raw.headers["x-llm-cache"]


async def metric(sidecar: Sidecar, line: str) -> float | None:
    """A sample of the sidecar's /metrics, as Prometheus scrapes it (None: absent)."""
    url = f"http://127.0.0.1:{sidecar.admin_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    for sample in text.splitlines():
        if sample.startswith(line + " "):
            return float(sample.split()[-1])
    return None


async def wait_epoch(sidecars: list[Sidecar], epoch: int, within: float = 10) -> float:
    """Seconds until every sidecar says it serves `epoch` (its llm_rollout_cache_epoch)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        seen = [await metric(s, "llm_rollout_cache_epoch") for s in sidecars]
        if seen == [epoch] * len(sidecars):
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"sidecars at cache epochs {seen}, expected all at {epoch}")


async def start(cluster: Cluster, cache: dict[str, Any], sidecars: int) -> list[Sidecar]:
    await cluster.start_operator()
    spec = provider_spec(cluster, traffic={"realWeight": 100}, cache=cache)
    await cluster.apply(NAME, spec)
    started = await cluster.start_sidecars(NAME, sidecars)
    await cluster.wait_weights(100)
    return started


async def restart(cluster: Cluster, old: ControlClient) -> Sidecar:
    """A new sidecar process in the same pod (its container restarted): same token."""
    sidecar = Sidecar(parse_spec({}), None, listen=Address("127.0.0.1", 0),
                      admin_listen=Address("127.0.0.1", 0))  # fmt: skip
    await sidecar.start()
    assert cluster.operator is not None
    client = ControlClient(sidecar.runtime, f"http://127.0.0.1:{cluster.operator.control_port}",
                           f"{NS}/{NAME}", old.token_file, sidecar=old.sidecar, poll_seconds=5,
                           min_stats_interval=0.25)  # fmt: skip
    await client.start()
    cluster.sidecars.append((sidecar, client))
    return sidecar


async def test_cache_flush_makes_a_cached_answer_a_miss_on_a_connected_sidecar(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    [sidecar] = await start(cluster, {"enabled": True}, 1)
    assert [await ask(sidecar), await ask(sidecar)] == ["miss", "hit"]
    capsys.readouterr()

    assert await cluster.plugin("cache-flush", NAME) == 0
    assert "cache-flush: done" in capsys.readouterr().out
    assert (await cluster.status(NAME))["cacheEpoch"] == 1
    assert "cache epoch 1" in (await cluster.wait_event("CacheFlushed"))["message"]
    await wait_epoch([sidecar], 1)
    assert await ask(sidecar) == "miss", "the answer cached before the flush is not served"
    assert await ask(sidecar) == "hit", "the cache keeps working after the flush"
    assert await metric(sidecar, 'llm_rollout_cache_flushes_total{source="operator"}') == 1
    assert await metric(sidecar, "llm_rollout_cache_entries") == 1
    assert cluster.provider.calls == 2, "one call before the flush, one after"


@pytest.fixture
def redis_server() -> Any:
    server = RedisServer().start()
    yield server
    server.stop()


async def test_with_redis_one_sidecar_deletes_the_stale_entries_and_a_restart_none(
    cluster: Cluster, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_rollout.cache")
    cache = {"enabled": True, "redis": {"url": redis_server.url, "timeoutMs": 500}}
    one, two = await start(cluster, cache, 2)
    assert [await ask(one), await ask(two)] == ["miss", "hit"]
    store = aioredis.Redis.from_url(redis_server.url)
    try:
        assert len(await store.keys(f"llm-rollout:{NS}/{NAME}:0:*")) == 1

        assert await cluster.plugin("cache-flush", NAME) == 0
        await wait_epoch([one, two], 1)
        assert await ask(two) == "miss", "the shared entry from before the flush is not served"
        assert await ask(one) == "hit", "the answer stored after the flush is shared again"
        for _ in range(200):  # the deletion runs in the background: up to 10 s
            if not await store.keys(f"llm-rollout:{NS}/{NAME}:0:*"):
                break
            await asyncio.sleep(0.05)
        assert await store.keys(f"llm-rollout:{NS}/{NAME}:0:*") == [], "stale entries deleted"
        assert len(await store.keys(f"llm-rollout:{NS}/{NAME}:1:*")) == 1
        await asyncio.sleep(0.5)  # time for a second deletion, if the claim let one through
        pruned = [r for r in caplog.records if PRUNED in r.getMessage()]
        assert len(pruned) == 1, "one sidecar deletes the stale entries, not each of them"

        # The second pod's sidecar restarts: it joins at epoch 1 and deletes nothing shared.
        sidecar, client = cluster.sidecars.pop(1)
        await client.stop()
        await sidecar.stop()
        three = await restart(cluster, client)
        await wait_epoch([one, three], 1)
        assert await ask(three) == "hit", "a restart does not empty the shared cache"
        assert await metric(three, 'llm_rollout_cache_flushes_total{source="operator"}') is None
        assert len([r for r in caplog.records if PRUNED in r.getMessage()]) == 1
    finally:
        await store.aclose()
