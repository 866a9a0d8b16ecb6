"""The translation's CPU per request, on the bench's own answers.

Translated traffic takes the passthrough's path plus the translation, so its added
cost is the translation itself: an Anthropic-SDK request translated for the bench's
OpenAI upstream, and that upstream's answer (whole body, and its stream event by
event, as the relay parses it anyway) translated back, set beside the sidecar's
whole CPU per request from the same run.
"""

from __future__ import annotations

import json
import time

from bench.upstream import EVENTS, JSON_RESPONSE
from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.sse import SSEParser
from proxy.translate import Translation

#: What the Anthropic SDK sends for the bench's one-line question.
REQUEST = json.dumps(
    {"model": "claude-haiku-4-5", "max_tokens": 64,
     "messages": [{"role": "user", "content": "Say hello."}]}
).encode()  # fmt: skip


def translation_cpu_us(repeats: int = 3000) -> dict[str, float]:
    """Microseconds of CPU (this process) to translate one request and its answer, per kind."""
    dialect = AnthropicMessages()
    body = JSON_RESPONSE.partition(b"\r\n\r\n")[2]
    figures = {}
    for kind in ("json", "stream"):
        raw = REQUEST if kind == "json" else REQUEST[:-1] + b', "stream": true}'
        started = time.process_time()
        for _ in range(repeats):
            parsed = dialect.parse(raw)
            translation = Translation(dialect, "openai", parsed)
            sent = translation.request("gpt-4o-mini")
            status = 200
            if kind == "json":
                status, answer = translation.answer(200, body, sent.turn)
            else:
                stream = translation.stream(sent.turn)
                parser = SSEParser()
                answer = b"".join(stream.feed(e) for chunk in EVENTS for e in parser.feed(chunk))
        figures[kind] = 1e6 * (time.process_time() - started) / repeats
        assert status == 200, answer[:300]
        assert b'"end_turn"' in answer, answer[:300]  # translated to its end
    return figures
