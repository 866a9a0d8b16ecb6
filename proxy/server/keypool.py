"""Each provider's keys and their health: which key the next call uses.

A provider has one key (``apiKey``) or a pool (``apiKeys``). Calls spread over the
pool's healthy keys in turn. A key the provider answers 401/403 is `rejected` and
skipped until it is replaced; one answered 429 `rests` for the provider's
retry-after, so one key's quota does not stop the provider. When no key is
healthy the least bad one is used (resting before rejected), so a single-key
provider behaves as before. Rotation is adding the new key, then removing the old:
requests in between use either, and none fails.

Keys are known here by fingerprint only, in metrics (``llm_rollout_key_state``),
``/health/llm`` and the audit trail.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Mapping

from proxy.config import Provider
from proxy.config.audit import AuditLog, fingerprint
from proxy.resilience.retry import retry_after
from proxy.server.keys import KeyStore, MissingKey
from proxy.server.metrics import Metrics

log = logging.getLogger("llm_rollout.keys")

#: `llm_rollout_key_state` values.
STATES = {"ok": 0, "rejected": 1, "resting": 2}
#: Which key to prefer when none is healthy: resting ones come back by themselves.
_RANK = {"ok": 0, "resting": 1, "rejected": 2}
#: How long a key answered 429 without a retry-after rests.
DEFAULT_REST_SECONDS = 1.0


@functools.lru_cache(maxsize=256)
def _fingerprint(provider: str, key: str) -> str:
    """`fingerprint`, remembered: a pool ranks its keys on every call."""
    return fingerprint(provider, key)


class KeyPool:
    def __init__(
        self, store: KeyStore, metrics: Metrics, audit: AuditLog, clock: Callable[[], float]
    ) -> None:
        self.store, self.metrics, self.audit, self.clock = store, metrics, audit, clock
        #: provider -> {fingerprint: state}, for /health/llm.
        self.states: dict[str, dict[str, str]] = {}
        self._resting_until: dict[str, float] = {}
        self._turn = itertools.count()

    def pick(self, provider: Provider, exclude: str | None = None) -> str:
        """The key for the next call to `provider` (not `exclude`, when another exists)."""
        sources = provider.key_sources
        if len(sources) <= 1:  # one key: nothing to choose (the common, fast case)
            return self.store.get(sources[0]) if sources else ""
        keys, missing = [], None
        for source in sources:
            try:
                keys.append(self.store.get(source))
            except MissingKey as error:
                missing = missing or error
        if not keys:
            assert missing is not None
            raise missing
        now = self.clock()
        ranked = sorted(
            (self._rank(provider.name, key, now), i, key)
            for i, key in enumerate(keys)
            if key != exclude or len(keys) == 1
        )  # fmt: skip
        best = [key for rank, _, key in ranked if rank == ranked[0][0]]
        return best[next(self._turn) % len(best)]

    def answered(
        self, provider: Provider, key: str, status: int, headers: Mapping[str, str]
    ) -> str | None:
        """Note what `provider` said to `key`; another healthy key to retry on, or None."""
        if status in (401, 403):
            self._rejected(provider.name, key)
        elif status == 429:
            wait = retry_after(headers, time.time()) or DEFAULT_REST_SECONDS
            print_ = fingerprint(provider.name, key)
            self._resting_until[print_] = self.clock() + wait
            self._set(provider.name, print_, "resting")
        else:
            return None
        other = self.pick(provider, exclude=key)
        healthy = self._rank(provider.name, other, self.clock()) == 0
        return other if other != key and healthy else None

    def loaded(self, provider: str, keys: list[str], known: list[str]) -> None:
        """The keys `provider` has now (`known`: before): audit what came and went."""
        now = {fingerprint(provider, k) for k in keys}
        before = {fingerprint(provider, k) for k in known}
        for print_ in sorted(now - before):
            self._set(provider, print_, "ok")
            self.audit.event("key.loaded", provider=provider, key=print_)
        for print_ in sorted(before - now):
            self._forget(provider, print_)
            self.audit.event("key.removed", provider=provider, key=print_)

    def rotated(self, provider: str, old: str, new: str) -> None:
        """A key file now holds `new` instead of `old` (which another slot may still hold:
        rotating a two-slot pool, docs/runbooks/key-rotation.md)."""
        if old not in self.store.held(provider):
            self._forget(provider, fingerprint(provider, old))
        self._set(provider, fingerprint(provider, new), "ok")
        self.audit.event("key.rotated", provider=provider, old=fingerprint(provider, old),
                         new=fingerprint(provider, new))  # fmt: skip

    def _rank(self, provider: str, key: str, now: float) -> int:
        print_ = _fingerprint(provider, key)
        state = self.states.get(provider, {}).get(print_, "ok")
        if state == "resting" and self._resting_until.get(print_, 0.0) <= now:
            self._set(provider, print_, "ok")
            state = "ok"
        return _RANK[state]

    def _rejected(self, provider: str, key: str) -> None:
        print_ = fingerprint(provider, key)
        self.metrics.key_rejections.labels(provider, print_).inc()
        if self.states.get(provider, {}).get(print_) != "rejected":
            self._set(provider, print_, "rejected")
            log.error("provider '%s' rejected its key %s (401/403): replace it "
                      "(docs/runbooks/key-rotation.md)", provider, print_)  # fmt: skip
            self.audit.event("key.rejected", provider=provider, key=print_)

    def _set(self, provider: str, print_: str, state: str) -> None:
        self.states.setdefault(provider, {})[print_] = state
        self.metrics.key_state.labels(provider, print_).set(STATES[state])

    def _forget(self, provider: str, print_: str) -> None:
        if self.states.get(provider, {}).pop(print_, None) is not None:
            self.metrics.key_state.remove(provider, print_)
        self._resting_until.pop(print_, None)
