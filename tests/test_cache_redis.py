"""The shared cache: a real redis-server, two sidecars, and Redis dying mid-run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import StartSidecar, openai_client, real_spec
from tests.fakes.openai import FakeOpenAI
from tests.redis_server import RedisServer, free_port

ASK = [{"role": "user", "content": "Describe the blue mug"}]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def cache(url: str, **more: Any) -> dict[str, Any]:
    # Generous: a loaded machine can stall a store past 200 ms, which is a (correct) miss
    # on the other sidecar; the timeout behaviour has its own test with its own bound.
    return {"enabled": True, "redis": {"url": url, "timeoutMs": 2000, **more}}


async def ask(sidecar: Any, stream: bool = False) -> str:
    raw = await openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0, stream=stream
    )
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    else:
        text = raw.parse().choices[0].message.content or ""
    assert text == "Real OpenAI answer.", "every request is answered in full"
    return raw.headers["x-llm-cache"]


async def test_a_miss_on_one_sidecar_is_a_hit_on_the_other(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    spec = real_spec(fake_openai, cache=cache(redis_server.url))
    one, two = await start_sidecar(spec), await start_sidecar(spec)
    assert [await ask(one), await ask(two)] == ["miss", "hit"]
    assert [await ask(two, stream=True), await ask(one, stream=True)] == ["miss", "hit"]
    assert len(fake_openai.requests) == 2, "one plain and one stream call in all"
    url = f"http://127.0.0.1:{one.admin_port}/cache/flush"
    async with aiohttp.ClientSession() as http, http.post(url) as flushed:
        assert await flushed.json() == {"flushed": 2}
    assert await ask(two) == "miss", "a flush on one sidecar empties the shared cache"


async def test_rollouts_sharing_a_redis_do_not_share_entries(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    spec = real_spec(fake_openai, cache=cache(redis_server.url))
    one, two = await start_sidecar(spec), await start_sidecar(spec)
    one.runtime.cache.rollout, two.runtime.cache.rollout = "shop/a", "shop/b"
    assert [await ask(one), await ask(two)] == ["miss", "miss"]


async def test_killing_redis_mid_run_loses_no_request(
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, cache=cache(redis_server.url)))
    assert [await ask(sidecar), await ask(sidecar)] == ["miss", "hit"]
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="llm_rollout.cache"):
        results = await asyncio.gather(*(ask(sidecar) for _ in range(6)))
        results.append(await ask(sidecar, stream=True))
    assert set(results) == {"miss"}, "Redis down: every request is a miss, none fails"
    assert sidecar.runtime.cache.redis_errors._value.get() >= 7
    outage = [r for r in caplog.records if "Redis at" in r.getMessage()]
    assert len(outage) == 1, "logged once per outage"
    assert "127.0.0.1" in outage[0].getMessage()
    redis_server.start()  # same port, empty
    assert [await ask(sidecar), await ask(sidecar)] == ["miss", "hit"], "back when it is"


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """Accepts connections and never answers: a Redis that hangs."""
    port = free_port()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    yield f"redis://127.0.0.1:{port}/0"
    server.close()


async def test_a_hanging_redis_costs_at_most_its_timeout(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, silent_redis: str
) -> None:
    spec = real_spec(
        fake_openai, cache=cache(silent_redis) | {"redis": {"url": silent_redis, "timeoutMs": 100}}
    )
    sidecar = await start_sidecar(spec)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await ask(sidecar) == "miss"
    # one lookup and one store, each bounded by 100 ms; generous for a loaded machine
    assert loop.time() - started < 5.0
    assert sidecar.runtime.cache.redis_errors._value.get() == 2
