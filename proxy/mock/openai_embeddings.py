"""Mock answers in the OpenAI embeddings shape: one vector per input, float or base64."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Draft
from proxy.mock.vectors import embed

#: The native width of each model; others get the common 1536.
_DIMENSIONS = {"text-embedding-3-large": 3072}
_DEFAULT_DIMENSIONS = 1536


def inputs(payload: dict[str, Any]) -> list[str | Sequence[int]]:
    """The items to embed: a string, a token array, or a list of either (checked by the dialect)."""
    given = payload.get("input")
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given and all(isinstance(t, int) for t in given):
        return [given]
    return list(given) if isinstance(given, list) else []


def prompt(payload: dict[str, Any]) -> str:
    return " ".join(item for item in inputs(payload) if isinstance(item, str))


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding != "base64":
        return vector
    # What the SDK decodes: little-endian float32, base64.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def render(request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    payload = request.payload
    dimensions = payload.get("dimensions") or _DIMENSIONS.get(request.model, _DEFAULT_DIMENSIONS)
    encoding = payload.get("encoding_format") or "float"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(embed(item, dimensions), encoding),
        }
        for index, item in enumerate(inputs(payload))
    ]
    usage = {"prompt_tokens": draft.input_tokens, "total_tokens": draft.input_tokens}
    return dumps({"object": "list", "data": data, "model": request.model, "usage": usage}), []
