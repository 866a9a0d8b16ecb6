"""Routing, pure: weights, stickiness that only ever moves keys mock -> real, kill switch."""

from __future__ import annotations

import random

import pytest

from proxy.config import Provider, parse_spec
from proxy.resilience.chain import fallback_chain
from proxy.routing import decide

PROVIDERS = [
    {"name": "oa", "type": "openai", "baseURL": "http://127.0.0.1:1/v1"},
    {"name": "an", "type": "anthropic", "baseURL": "http://127.0.0.1:2"},
    {"name": "oa-backup", "type": "openai", "baseURL": "http://127.0.0.1:3/v1"},
]


def spec(weight: int, sticky: bool = True, **extra: object):  # type: ignore[no-untyped-def]
    traffic: dict[str, object] = {"realWeight": weight}
    if sticky:
        traffic["stickyKey"] = {"header": "x-user-id"}
    return parse_spec({"providers": PROVIDERS, "traffic": traffic, **extra})


def real_users(weight: int) -> set[str]:
    s = spec(weight)
    users = (f"user-{i}" for i in range(5000))
    return {u for u in users if decide(s, "openai", sticky_value=u, draw=0.0).provider}


def test_same_key_same_arm_every_time() -> None:
    s = spec(50)
    for user in ("alice", "bob", "carol"):
        arms = {decide(s, "openai", sticky_value=user, draw=random.random()).backend
                for _ in range(50)}  # fmt: skip
        assert len(arms) == 1


def test_growing_the_weight_only_moves_keys_from_mock_to_real() -> None:
    previous: set[str] = set()
    for weight in (0, 5, 25, 50, 75, 100):
        current = real_users(weight)
        assert previous <= current, f"a user left the real arm when growing to {weight}%"
        assert abs(len(current) / 5000 - weight / 100) < 0.03, "bucket split matches the weight"
        previous = current


def test_weight_without_sticky_key_is_a_per_request_draw() -> None:
    s = spec(25, sticky=False)
    rng = random.Random(1)
    real = sum(decide(s, "openai", sticky_value=None, draw=rng.random()).provider is not None
               for _ in range(4000))  # fmt: skip
    assert 0.22 < real / 4000 < 0.28
    assert decide(s, "openai", sticky_value=None, draw=0.1).reason == "weight"


def test_request_without_the_sticky_header_falls_back_to_the_draw() -> None:
    s = spec(100)
    assert decide(s, "openai", sticky_value=None, draw=0.5).reason == "weight"
    assert decide(s, "openai", sticky_value="u", draw=0.5).reason == "sticky"


@pytest.mark.parametrize("weight", [0, 100])
def test_kill_switch_sends_everything_to_mock(weight: int) -> None:
    forced = spec(weight, forceMock=True)
    assert decide(forced, "openai", sticky_value="u", draw=0.0).reason == "force-mock"
    env = decide(spec(weight), "openai", sticky_value="u", draw=0.0, force_mock=True)
    assert env.provider is None
    assert env.reason == "force-mock"


def test_provider_of_the_dialect_in_fallback_order() -> None:
    s = spec(100, fallback=["oa-backup", "oa", "mock"])
    assert decide(s, "openai", sticky_value=None, draw=0.0).backend == "oa-backup"
    assert decide(s, "anthropic", sticky_value=None, draw=0.0).backend == "an"
    assert decide(s, "gemini", sticky_value=None, draw=0.0).reason == "no-provider"


def weighted(providers: dict[str, int], sticky: bool = True):  # type: ignore[no-untyped-def]
    traffic: dict[str, object] = {"realWeight": 100, "providers": providers}
    if sticky:
        traffic["stickyKey"] = {"header": "x-user-id"}
    return parse_spec({"providers": PROVIDERS, "traffic": traffic})


def test_provider_weights_split_real_traffic_and_keep_each_user_on_one_provider() -> None:
    s = weighted({"oa": 70, "an": 30})
    chosen = {
        f"user-{i}": decide(s, "openai", sticky_value=f"user-{i}", draw=0.0, cross=True).backend
        for i in range(4000)
    }
    share = sum(1 for b in chosen.values() if b == "an") / len(chosen)
    assert 0.26 < share < 0.34, share
    assert set(chosen.values()) == {"oa", "an"}
    again = {u: decide(s, "openai", sticky_value=u, draw=0.9, cross=True).backend for u in chosen}
    assert again == chosen, "sticky: the same user, the same provider"
    # Without a sticky key each request draws; the split holds all the same.
    unsticky = weighted({"oa": 70, "an": 30}, sticky=False)
    draws = [decide(unsticky, "openai", sticky_value=None, draw=random.random(),
                    cross=True).backend for _ in range(4000)]  # fmt: skip
    assert 0.26 < draws.count("an") / len(draws) < 0.34


def test_provider_weights_only_among_providers_that_can_serve_the_request() -> None:
    s = weighted({"oa": 50, "an": 50})
    # A request that cannot be translated (Responses, embeddings) stays on its dialect.
    served = {decide(s, "openai", sticky_value=f"u{i}", draw=0.0).backend for i in range(500)}
    assert served == {"oa"}
    only_backup = weighted({"oa-backup": 1})
    assert decide(only_backup, "anthropic", sticky_value="u", draw=0.0).backend == "an", (
        "no weighted provider can serve it: the first that can"
    )


def test_provider_weights_name_known_providers() -> None:
    with pytest.raises(ValueError, match=r"traffic\.providers names unknown provider"):
        weighted({"nope": 10})
    with pytest.raises(ValueError, match="at least one provider needs a weight above 0"):
        weighted({"oa": 0})


def test_the_fallback_chain_crosses_dialects_only_for_translatable_requests() -> None:
    s = parse_spec({"providers": PROVIDERS, "fallback": ["oa", "an", "oa-backup", "mock"]})
    first = s.provider("oa")
    assert first is not None

    def names(chain: list[Provider | None]) -> list[str]:
        return [p.name if p else "mock" for p in chain]

    assert names(fallback_chain(s, first, cross=True)) == ["oa", "an", "oa-backup", "mock"]
    assert names(fallback_chain(s, first)) == ["oa", "oa-backup", "mock"]
    off = [p | {"enabled": False} if p["name"] == "an" else p for p in PROVIDERS]
    disabled = parse_spec({"providers": off, "fallback": ["oa", "an", "mock"]})
    assert names(fallback_chain(disabled, first, cross=True)) == ["oa", "mock"]
