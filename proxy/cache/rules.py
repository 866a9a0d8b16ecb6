"""Cacheability: whether a request may be answered from, or stored into, the cache.

The client decides per request (``Cache-Control: no-cache`` refreshes: skip the
lookup, store the new answer; ``no-store`` or ``x-llm-cache: skip`` bypass it);
the rollout decides the rest: ``when: deterministic`` caches only requests that
ask for a repeatable answer (temperature 0 or a seed), in whichever place the
dialect puts those fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal


class Decision(Enum):
    """What the cache does for one request."""

    LOOKUP = "lookup"  # answer from the cache if present, else store the real answer
    REFRESH = "refresh"  # do not answer from the cache, but store the new answer
    BYPASS = "bypass"  # neither read nor write


def _sampling(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Where the dialect keeps temperature and seed (Gemini: ``generationConfig``)."""
    nested = body.get("generationConfig") or body.get("generation_config")
    return nested if isinstance(nested, Mapping) else body


def is_deterministic(body: Mapping[str, Any]) -> bool:
    """True when the request asks for temperature 0 or pins a seed."""
    sampling = _sampling(body)
    temperature = sampling.get("temperature")
    seeded = sampling.get("seed") is not None
    zero = isinstance(temperature, int | float) and not isinstance(temperature, bool)
    return seeded or (zero and temperature == 0)


def decide(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    when: Literal["deterministic", "always"],
) -> Decision:
    """The cache's decision for a request from its body and headers (lower-cased names)."""
    if headers.get("x-llm-cache", "").strip().lower() == "skip":
        return Decision.BYPASS
    directives = {d.strip().lower() for d in headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        return Decision.BYPASS
    if when == "deterministic" and not is_deterministic(body):
        return Decision.BYPASS
    if "no-cache" in directives:
        return Decision.REFRESH
    return Decision.LOOKUP
