"""Which replica is active: kopf's peering rule, read from the peering object's status.

Pure. Two operator replicas elect one active through kopf peering: each writes
``status.<identity> = {priority, lifetime, lastseen}`` to the peering object, and a
replica works only while no live peer has a higher (or equal) priority. kopf keeps that
decision to itself, but the control Service needs it: a standby replica must not be
*ready*, or the Service sends sidecars there and every call is refused and retried
(and a standby that was active before would serve its stale view). So the operator
reads the same object and applies the same rule to report readiness (``/readyz``) and
to refuse control-channel calls while it stands by.

A dead peer (``lastseen + lifetime`` passed, as after a SIGKILL) does not count: the
standby becomes active when the killed replica's lease runs out, which is why
``--peering-lifetime`` bounds the failover time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


def _alive(entry: Mapping[str, Any], now: datetime) -> bool:
    try:
        seen = datetime.fromisoformat(str(entry["lastseen"]))
        lifetime = timedelta(seconds=int(entry.get("lifetime", 60)))
    except (KeyError, TypeError, ValueError):
        return False  # an entry kopf could not parse either: kopf ignores it as dead
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return seen + lifetime > now


def is_active(
    peers: Mapping[str, Any], identity: str, priority: int, now: datetime | None = None
) -> bool:
    """Whether the replica `identity` with `priority` works, by kopf's rule.

    It works when it has announced itself (its own entry is alive: before that kopf
    has not decided yet) and no other live peer has a priority as high as its own
    (kopf pauses every replica on a tie).
    """
    now = now or datetime.now(UTC)
    own = peers.get(identity)
    if not isinstance(own, Mapping) or not _alive(own, now):
        return False
    for other, entry in peers.items():
        if other == identity or not isinstance(entry, Mapping) or not _alive(entry, now):
            continue
        try:
            if int(entry.get("priority", 0)) >= priority:
                return False
        except (TypeError, ValueError):
            continue
    return True
