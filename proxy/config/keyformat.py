"""Whether a provider key can be right for its provider type, told without showing it.

A key that cannot work (empty, with whitespace or a newline inside, the wrong prefix
or length for its provider) is a config error at load, naming the provider and the
reason, instead of a 401 on the first real request. OpenAI-compatible servers with
their own key shapes opt out with ``apiKey.format: any`` (only emptiness and
whitespace are then checked). Messages never include the key or any part of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.config.model import ApiKey, ProviderKind


@dataclass(frozen=True, slots=True)
class KeyShape:
    prefix: str
    min_length: int
    max_length: int
    example: str  # how the provider's keys look, for the error message


#: Published shapes: OpenAI ``sk-...`` / ``sk-proj-...``, Anthropic ``sk-ant-...``,
#: Google AI Studio ``AIza`` + 35 characters. Azure OpenAI has none to check: its
#: keys (32 hex or 84 characters) and Entra tokens (JWTs) share no prefix.
SHAPES: dict[ProviderKind, KeyShape] = {
    "openai": KeyShape("sk-", 20, 512, "sk-... or sk-proj-..."),
    "anthropic": KeyShape("sk-ant-", 24, 512, "sk-ant-..."),
    "gemini": KeyShape("AIza", 39, 39, "AIza followed by 35 characters"),
}
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]+")


def key_problem(provider_type: ProviderKind, source: ApiKey, key: str) -> str | None:
    """Why `key` cannot be a key of `provider_type`, or None when it may be."""
    if not key:
        return "the key is empty"
    if any(c.isspace() for c in key):
        return "the key has whitespace or a line break inside (copied with extra text?)"
    shape = SHAPES.get(provider_type)
    if source.format == "any" or shape is None:
        return None
    if not key.startswith(shape.prefix):
        return (
            f"{provider_type} keys start with '{shape.prefix}' ({shape.example}); this one "
            "does not. For an OpenAI-compatible server with other keys set apiKey.format: any"
        )
    if not shape.min_length <= len(key) <= shape.max_length:
        wanted = (
            f"{shape.min_length}"
            if shape.min_length == shape.max_length
            else f"{shape.min_length} to {shape.max_length}"
        )
        return f"{provider_type} keys have {wanted} characters; this one has {len(key)}"
    if not _TOKEN.fullmatch(key):
        return "the key has characters no provider key has"
    return None
