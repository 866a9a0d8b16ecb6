"""The cache's pure parts: keys, cacheability, entries, the byte-bounded LRU. No sockets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.cache.entry import Entry, EntryError, dumps, loads
from proxy.cache.key import cache_key, canonical_body, epoch_key, epoch_prefix
from proxy.cache.lru import ByteLRU
from proxy.cache.rules import Decision, decide, is_deterministic
from proxy.config import parse_spec
from proxy.config.model import Provider

OPENAI = Provider.model_validate({"name": "openai", "type": "openai", "baseURL": "http://a/v1"})
BODY = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}


def key(**changes: object) -> str:
    args: dict[str, object] = {
        "rollout": "ns/demo",
        "tenant": "acme",
        "dialect": "openai_chat",
        "path": "/v1/chat/completions",
        "streamed": False,
        "provider": OPENAI,
        "body": BODY,
    }
    args.update(changes)
    return cache_key(**args)  # type: ignore[arg-type]


def test_key_ignores_key_order_whitespace_and_transport_fields() -> None:
    reordered = {"messages": BODY["messages"], "temperature": 0, "model": "gpt-4o-mini"}
    assert key(body=reordered) == key()
    assert key(body={**BODY, "stream": False, "stream_options": {"include_usage": True}}) == key()
    assert canonical_body({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


@pytest.mark.parametrize(
    "change",
    [
        {"rollout": "ns/other"},
        {"tenant": "globex"},
        {"tenant": None},
        {"dialect": "openai_responses"},
        {"path": "/v1/responses"},
        {"streamed": True},
        {"provider": OPENAI.model_copy(update={"base_url": "http://b/v1"})},
        {"provider": OPENAI.model_copy(update={"name": "openai-eu"})},
        {"body": {**BODY, "model": "gpt-4o"}},
        {"body": {**BODY, "messages": [{"role": "user", "content": "hi!"}]}},
    ],
)
def test_key_separates_what_changes_the_answer(change: dict[str, object]) -> None:
    assert key(**change) != key()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"seed": 7, "temperature": 1.2}, True),
        ({"temperature": 0.7}, False),
        ({}, False),
        ({"temperature": False}, False),
        ({"generationConfig": {"temperature": 0}}, True),
        ({"generationConfig": {"seed": 3}}, True),
        ({"generationConfig": {"temperature": 1}}, False),
    ],
)
def test_deterministic_means_temperature_zero_or_a_seed(
    body: dict[str, object], expected: bool
) -> None:
    assert is_deterministic(body) is expected


def test_client_headers_and_rollout_policy_decide() -> None:
    det, free = {"temperature": 0}, {"temperature": 1}
    assert decide(det, {}, "deterministic") is Decision.LOOKUP
    assert decide(free, {}, "deterministic") is Decision.BYPASS
    assert decide(free, {}, "always") is Decision.LOOKUP
    assert decide(det, {"cache-control": "no-cache"}, "deterministic") is Decision.REFRESH
    assert decide(det, {"cache-control": "max-age=0, no-store"}, "always") is Decision.BYPASS
    assert decide(det, {"x-llm-cache": "Skip"}, "always") is Decision.BYPASS


def entry(body: bytes = b'{"id":"x"}', created_at: float = 0.0, streamed: bool = False) -> Entry:
    return Entry(
        status=200,
        content_type="text/event-stream" if streamed else "application/json",
        streamed=streamed,
        provider="openai",
        cost_usd=Decimal("0.000123"),
        created_at=created_at,
        body=body,
    )


@given(body=st.binary(max_size=512), streamed=st.booleans(), created=st.floats(0, 1e10))
def test_entry_round_trips_byte_exact(body: bytes, streamed: bool, created: float) -> None:
    stored = entry(body, created, streamed)
    assert loads(dumps(stored)) == stored


@pytest.mark.parametrize("data", [b"", b"garbage", b'{"v":2}\n', b'{"v":1}\nbody'])
def test_foreign_bytes_are_not_an_entry(data: bytes) -> None:
    with pytest.raises(EntryError):
        loads(data)


def test_lru_evicts_least_recently_used_and_stays_within_max_bytes() -> None:
    size = entry(b"x" * 100).size
    lru = ByteLRU(max_bytes=size * 3, ttl_seconds=60)
    for name in "abc":
        assert lru.put(name, entry(b"x" * 100))
    assert lru.get("a", 1.0) is not None, "touching 'a' makes 'b' the oldest"
    lru.put("d", entry(b"x" * 100))
    assert lru.get("b", 1.0) is None
    assert {k for k in "acd" if lru.get(k, 1.0)} == set("acd")
    assert lru.bytes == size * 3 == sum(entry(b"x" * 100).size for _ in range(len(lru)))


@given(sizes=st.lists(st.integers(0, 3000), max_size=60), cap=st.integers(1024, 8192))
def test_lru_never_exceeds_max_bytes(sizes: list[int], cap: int) -> None:
    lru = ByteLRU(max_bytes=cap, ttl_seconds=60)
    for i, n in enumerate(sizes):
        stored = lru.put(str(i), entry(b"y" * n))
        assert stored is (entry(b"y" * n).size <= cap)
        assert lru.bytes <= cap
    assert lru.bytes == sum(e.size for e in lru._entries.values())


def test_lru_expires_after_ttl_and_flushes() -> None:
    lru = ByteLRU(max_bytes=10_000, ttl_seconds=30)
    lru.put("a", entry(created_at=100.0))
    assert lru.get("a", 129.0) is not None
    assert lru.get("a", 130.0) is None
    assert lru.bytes == 0
    lru.put("b", entry(created_at=100.0))
    lru.flush()
    assert len(lru) == 0
    assert lru.bytes == 0
    assert lru.get("b", 100.0) is None


def test_cache_config_defaults_and_errors_name_the_field() -> None:
    spec = parse_spec({"cache": {"enabled": True, "redis": {"url": "redis://127.0.0.1:6379/0"}}})
    assert spec.cache.when == "deterministic"
    assert spec.cache.scope == "tenant"
    assert spec.cache.redis is not None
    assert spec.cache.redis.timeout_ms == 50
    with pytest.raises(ValueError, match=r"cache\.scope"):
        parse_spec({"cache": {"scope": "global"}})
    with pytest.raises(ValueError, match=r"cache\.redis\.url"):
        parse_spec({"cache": {"redis": {"url": "http://x"}}})


def test_a_new_cache_epoch_puts_every_earlier_entry_out_of_reach() -> None:
    """`cache-flush` bumps the epoch: the same request's name changes, and the names of
    every earlier epoch are told apart by their prefix (what `RedisStore.prune` deletes)."""
    provider = Provider(name="p", type="openai", base_url="http://x/v1")
    digest = cache_key(rollout="shop/m", tenant=None, dialect="openai", path="/v1/chat/completions",
                       streamed=False, provider=provider, body={"model": "m"})  # fmt: skip
    names = [epoch_key(epoch, digest) for epoch in (0, 1, 10)]
    assert len(set(names)) == 3
    assert names[1].startswith(epoch_prefix(1))
    assert not names[0].startswith(epoch_prefix(1))
    assert not names[2].startswith(epoch_prefix(1)), "epoch 1 is not a prefix of epoch 10"
