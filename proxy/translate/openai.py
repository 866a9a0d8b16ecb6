"""OpenAI chat <-> the hub: the hub *is* OpenAI chat, so this side only checks and frames.

A request from an OpenAI client is already a hub request; one for an OpenAI provider
drops the hub-only keys (refusing those OpenAI has no field for) and asks a stream for
its usage. Stream chunks are ``data: {json}`` lines ending with ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from proxy.dialects.base import compact
from proxy.sse import Event, encode
from proxy.translate.hub import CACHE_WRITE, USAGE_SO_FAR, Untranslatable

TARGET = "OpenAI"


def request_from_hub(hub: dict[str, Any], model: str) -> dict[str, Any]:
    """A hub request as OpenAI's (an OpenAI provider serves another dialect's client)."""
    if hub.get("_top_k") is not None:
        raise Untranslatable("top_k", TARGET, "OpenAI samples with temperature and top_p only")
    out = {k: v for k, v in hub.items() if not k.startswith("_")} | {"model": model}
    if out.get("stream"):
        out["stream_options"] = {"include_usage": True}
    return out


def answer_from_hub(hub: dict[str, Any]) -> dict[str, Any]:
    """A hub answer (or chunk) as OpenAI's: hub-only keys removed."""
    if USAGE_SO_FAR in hub:
        hub = {k: v for k, v in hub.items() if k != USAGE_SO_FAR}
    usage = hub.get("usage")
    if isinstance(usage, dict):
        hub = hub | {"usage": {k: v for k, v in usage.items() if k != CACHE_WRITE}}
    return {"created": int(time.time())} | hub


class StreamToHub:
    """OpenAI chat stream events -> hub chunks (already hub chunks: parsed, nothing else)."""

    def feed(self, event: Event) -> list[dict[str, Any]]:
        if event.data == "[DONE]":
            return []
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return []
        return [chunk] if isinstance(chunk, dict) else []


class StreamFromHub:
    """Hub chunks -> OpenAI chat stream events; the usage chunk only when the client asked."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if "usage" in chunk and not chunk.get("choices") and not self.include_usage:
            return b""
        chunk = answer_from_hub(chunk)
        return encode(compact(chunk))

    def close(self) -> bytes:
        return encode("[DONE]")
