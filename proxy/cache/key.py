"""Cache keys: which requests are "the same request" for the cache.

Two requests share an entry only when everything that shapes the answer is equal:
the rollout (entries never cross rollouts), the tenant unless ``scope: rollout``,
the client's dialect and path, the provider that would serve it together with a
fingerprint of that provider's config (a changed base URL or type invalidates its
entries; the model is part of the body), and the body's canonical JSON.

Every key starts with the rollout's cache epoch (``epoch_key``), which `kubectl
llmrollout cache-flush` bumps through the operator: an entry stored before a flush is
out of reach the moment a sidecar takes the new epoch, in memory and in a shared
Redis alike, before (and whether or not) anything is deleted.

``stream`` and ``stream_options`` are left out of the canonical body, but whether
the client streams is keyed separately: a stored SSE stream is never turned into a
plain body or the reverse, so a plain request and a stream request of the same
prompt are two entries. (Gemini already says so in its path.)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proxy.config.model import Provider

#: Body fields that select the transport, not the answer.
TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})


def canonical_body(body: dict[str, Any]) -> bytes:
    """The body as JSON with sorted keys and no whitespace, transport fields removed."""
    kept = {k: v for k, v in body.items() if k not in TRANSPORT_FIELDS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def provider_fingerprint(provider: Provider) -> str:
    """A short digest of what in a provider's config changes its answers."""
    shape = f"{provider.name}\n{provider.type}\n{provider.base_url}".encode()
    return hashlib.sha256(shape).hexdigest()[:16]


def cache_key(
    *,
    rollout: str,
    tenant: str | None,
    dialect: str,
    path: str,
    streamed: bool,
    provider: Provider,
    body: dict[str, Any],
) -> str:
    """The hex SHA-256 naming one entry; ``tenant`` is None when scope is ``rollout``."""
    digest = hashlib.sha256()
    for part in (
        rollout,
        tenant if tenant is not None else "*",
        dialect,
        path,
        "stream" if streamed else "plain",
        provider_fingerprint(provider),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(canonical_body(body))
    return digest.hexdigest()


def epoch_key(epoch: int, digest: str) -> str:
    """The name an entry is stored under in cache epoch ``epoch`` (see the module's doc)."""
    return f"{epoch}:{digest}"


def epoch_prefix(epoch: int) -> str:
    """What the names of epoch ``epoch``'s entries start with; other names are stale."""
    return epoch_key(epoch, "")
