"""Building a mock answer for a request in its dialect."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.config.model import MockSpec
from proxy.dialects import ParsedRequest, Usage
from proxy.mock import (
    anthropic_messages,
    gemini,
    openai_chat,
    openai_embeddings,
    openai_responses,
)
from proxy.mock.text import compose, count_tokens, last_user_text, request_rng


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete mock response. For a stream, `events[i]` is sent after `delays[i]` seconds."""

    status: int
    content_type: str
    body: bytes = b""
    events: list[bytes] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class Draft:
    """What every dialect renders from: the text and its token counts."""

    rng: random.Random
    text: str
    input_tokens: int
    output_tokens: int
    created: int
    ident: str


Renderer = Callable[[ParsedRequest, Draft], tuple[bytes, list[bytes]]]
PromptReader = Callable[[dict[str, Any]], str]


def _messages_prompt(payload: dict[str, Any]) -> str:
    return last_user_text(payload.get("messages"))


#: dialect name -> (where its prompt is, how its answer looks); a new dialect adds a line.
DIALECTS: dict[str, tuple[PromptReader, Renderer]] = {
    "openai.chat": (_messages_prompt, openai_chat.render),
    "anthropic.messages": (_messages_prompt, anthropic_messages.render),
    "openai.responses": (openai_responses.prompt, openai_responses.render),
    "openai.embeddings": (openai_embeddings.prompt, openai_embeddings.render),
    "gemini.generate_content": (gemini.prompt, gemini.render),
}
#: Dialects that answer with vectors, not generated text: they produce no output tokens.
_NO_OUTPUT = frozenset({"openai.embeddings"})


def answer(dialect: str, request: ParsedRequest, spec: MockSpec) -> Answer:
    read_prompt, render = DIALECTS[dialect]
    rng = request_rng(spec.seed, request.raw)
    text = compose(rng, read_prompt(request.payload), request.max_tokens)
    draft = Draft(
        rng=rng,
        text=text,
        input_tokens=count_tokens(request.raw.decode("utf-8", "replace")),
        output_tokens=count_tokens(text),
        created=int(time.time()),
        ident="".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24)),
    )
    body, events = render(request, draft)
    output_tokens = 0 if dialect in _NO_OUTPUT else draft.output_tokens
    usage = Usage(input_tokens=draft.input_tokens, output_tokens=output_tokens)
    if not request.stream:
        return Answer(
            200,
            "application/json",
            body=body,
            usage=usage,
        )
    return Answer(
        200,
        "text/event-stream",
        events=events,
        delays=_delays(rng, spec, len(events)),
        usage=usage,
    )


def _delays(rng: random.Random, spec: MockSpec, count: int) -> list[float]:
    """Time to first token, then a steady rate, from the latency profile."""
    first = spec.latency.first_token_ms
    ttft = first.p50 / 1000 if first.p95 == first.p50 else rng.uniform(first.p50, first.p95) / 1000
    step = 1 / spec.latency.tokens_per_second if spec.latency.tokens_per_second else 0.0
    return [ttft] + [step] * (count - 1) if count else []
