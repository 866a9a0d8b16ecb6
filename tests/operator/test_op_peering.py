"""kopf's election rule as `/readyz` applies it: which replica is the active one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollout_operator.peering import is_active

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_ago: float = 1, lifetime: int = 15) -> dict[str, object]:
    lastseen = (NOW - timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen}


def test_the_highest_live_priority_is_active_and_the_other_stands_by() -> None:
    peers = {"a": peer(10), "b": peer(20)}
    assert is_active(peers, "b", 20, NOW)
    assert not is_active(peers, "a", 10, NOW)


def test_a_peer_silent_past_its_lifetime_is_dead_and_the_standby_takes_over() -> None:
    peers = {"a": peer(10), "b": peer(20, seen_ago=16)}
    assert is_active(peers, "a", 10, NOW)


def test_equal_priorities_pause_both_as_kopf_does() -> None:
    peers = {"a": peer(10), "b": peer(10)}
    assert not is_active(peers, "a", 10, NOW)
    assert not is_active(peers, "b", 10, NOW)


def test_a_replica_not_yet_in_the_peering_object_is_not_active() -> None:
    assert not is_active({"b": peer(5)}, "a", 10, NOW)
    assert not is_active({}, "a", 10, NOW)
    assert not is_active({"a": peer(10, seen_ago=20)}, "a", 10, NOW)  # its own entry expired


def test_garbled_entries_are_ignored_as_kopf_treats_them_dead() -> None:
    peers = {"a": peer(10), "b": {"priority": 99, "lastseen": "not a date"}, "c": "junk"}
    assert is_active(peers, "a", 10, NOW)
