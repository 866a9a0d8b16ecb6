"""Per-tenant request quotas: refuse, never wait.

The tenant is the value of `spec.tenants.header` (requests without it share the
tenant ""). Each tenant has a token bucket of `requestsPerMinute` (its override,
else the default). A request over quota is refused at once with 429 and a
`retry-after` saying when the next request fits: a tenant over its quota is the
app's own overuse, and holding its connections would only move the queue into
the sidecar. Tenants without a `requestsPerMinute` are not limited.

Buckets of idle tenants are dropped once there are many, so a header with
unbounded values cannot grow memory without bound.
"""

from __future__ import annotations

import math

from proxy.config.model import Tenants
from proxy.resilience.ratelimit import Bucket

_MAX_TRACKED = 10_000


class TenantQuotas:
    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}

    def admit(self, tenants: Tenants | None, tenant: str, now: float) -> int | None:
        """None if the request may go; else the whole seconds to put in `retry-after`."""
        if tenants is None:
            return None
        rpm = tenants.quota(tenant).requests_per_minute
        if rpm is None:
            return None
        bucket = self._buckets.get(tenant)
        if bucket is None or bucket.capacity != rpm:
            if len(self._buckets) >= _MAX_TRACKED:
                self._prune(now)
            bucket = self._buckets[tenant] = Bucket(rpm, now)
        wait = bucket.wait_for(1, now)
        if wait > 0:
            return max(1, math.ceil(wait))
        bucket.level -= 1
        return None

    def _prune(self, now: float) -> None:
        """Forget tenants whose bucket is full again: forgetting them changes nothing."""
        for name, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.level >= bucket.capacity:
                del self._buckets[name]
        if len(self._buckets) >= _MAX_TRACKED:  # all busy: drop the oldest
            for name in list(self._buckets)[: _MAX_TRACKED // 10]:
                del self._buckets[name]
