"""What the mock writes its answer from (`Draft`) and what it answers (`Answer`).

Their own module so `proxy.mock.answer`, which builds both, and the modules that
render a draft (`hub`, `openai_embeddings`) or replay an answer (`cassette`) import
them without importing one another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from proxy.dialects import Usage


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the mock makes; the hub answer gives it the id ``call_<ident>``."""

    ident: str
    name: str
    arguments: str  # compact JSON text, as OpenAI sends it


@dataclass(frozen=True, slots=True)
class Draft:
    """What the answer is made from: the text or tool calls, and their token counts.

    `structured` marks `text` as JSON (asked for by a schema or JSON mode), which is
    streamed in small pieces rather than by words.
    """

    rng: random.Random
    text: str
    input_tokens: int
    output_tokens: int
    created: int
    ident: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    structured: bool = False
    #: The text was cut at the request's max tokens: the hub answer's "length", which each
    #: dialect's translation says its own way ("max_tokens", "MAX_TOKENS", incomplete).
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
