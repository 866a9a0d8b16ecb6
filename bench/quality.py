"""The quality scorer's CPU per answer, on the bench's own request and answers.

The scorer always runs in the sidecar, so "scoring off" is measured as its
complement: the CPU the scorer spends on the exact request and answers the load
uses (whole body and stream, read and scored as the sidecar does), set beside the
sidecar's whole CPU per request from the same run.
"""

from __future__ import annotations

import json
import time

from bench.load import BODY, PATH, STREAM_BODY
from bench.upstream import EVENTS, JSON_RESPONSE
from proxy.dialects import ROUTES
from proxy.quality import Accumulator, expectations, from_body, score
from proxy.sse import SSEParser

_DIALECT = dict(ROUTES)[PATH]


def scorer_cpu_us(repeats: int = 3000) -> dict[str, float]:
    """Microseconds of CPU (this process) to read and score one answer, per kind."""
    body = JSON_RESPONSE.partition(b"\r\n\r\n")[2]
    # The relay parses a stream's events anyway (usage, its end): the scorer adds the reading.
    events = list(SSEParser().feed(b"".join(EVENTS)))
    name = _DIALECT.name
    figures = {}
    for kind, request in (("json", BODY), ("stream", STREAM_BODY)):
        parsed = _DIALECT.parse(request.encode())
        headers: dict[str, str] = {}
        started = time.process_time()
        for _ in range(repeats):
            if kind == "json":
                finished = from_body(name, body)
            else:
                accumulator = Accumulator(name)
                for event in events:
                    accumulator.feed(event)
                finished = accumulator.found
            result = score(expectations(name, parsed, headers), finished)
        figures[kind] = 1e6 * (time.process_time() - started) / repeats
        assert not result.rejections, (kind, result, json.dumps(finished.text))
    return figures
