"""What every mock renderer writes from (`Draft`) and what the mock answers (`Answer`).

Their own module so the renderers (one per dialect) and `proxy.mock.answer`, which
calls them, both import them and neither imports the other (the Gemini renderer
reshapes a whole `Answer` for its JSON-array stream).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from proxy.dialects import Usage


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the mock makes; renderers add their id prefix (`call_`, `toolu_`)."""

    ident: str
    name: str
    arguments: str  # compact JSON text, as OpenAI sends it

    @property
    def input(self) -> dict[str, Any]:
        value = json.loads(self.arguments)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Draft:
    """What every dialect renders from: the text or tool calls, and their token counts.

    `structured` marks `text` as JSON (asked for by a schema or JSON mode), which
    renderers stream in small pieces rather than by words.
    """

    rng: random.Random
    text: str
    input_tokens: int
    output_tokens: int
    created: int
    ident: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    structured: bool = False
    #: The text was cut at the request's max tokens: renderers say so in the dialect's way
    #: ("length", "max_tokens", "MAX_TOKENS", an incomplete response).
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete mock response. For a stream, `events[i]` is sent after `delays[i]` seconds."""

    status: int
    content_type: str
    body: bytes = b""
    events: list[bytes] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    #: Extra response headers (`retry-after` on a simulated 429).
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before the status line: generation time, or a simulated hang.
    wait: float = 0.0
    #: The injected fault, if any (`spec.mock.errors`), for metrics.
    fault: str | None = None
