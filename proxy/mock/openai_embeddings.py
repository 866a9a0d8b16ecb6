"""Mock answers in the OpenAI embeddings shape: one vector per input, float or base64.

The one dialect the mock still renders itself: `proxy.translate` has no embeddings
(the hub is a chat format, and no other provider's API the sidecar speaks embeds), so
there is no translation for this answer to go through.
"""

from __future__ import annotations

import base64
import struct

from proxy.dialects import ParsedRequest
from proxy.dialects.base import dumps
from proxy.mock.draft import Draft
from proxy.mock.prompts import embedding_inputs
from proxy.mock.vectors import embed

#: The native width of each model; others get the common 1536.
_DIMENSIONS = {"text-embedding-3-large": 3072}
_DEFAULT_DIMENSIONS = 1536


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding != "base64":
        return vector
    # What the SDK decodes: little-endian float32, base64.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def render(request: ParsedRequest, draft: Draft) -> bytes:
    payload = request.payload
    dimensions = payload.get("dimensions") or _DIMENSIONS.get(request.model, _DEFAULT_DIMENSIONS)
    encoding = payload.get("encoding_format") or "float"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(embed(item, dimensions), encoding),
        }
        for index, item in enumerate(embedding_inputs(payload))
    ]
    usage = {"prompt_tokens": draft.input_tokens, "total_tokens": draft.input_tokens}
    return dumps({"object": "list", "data": data, "model": request.model, "usage": usage})
