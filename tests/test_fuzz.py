"""Property-based fuzzing of every endpoint of every dialect (issue 17, item 7).

Random JSON, mutated valid requests in each SDK's shape, odd paths and headers: each
answer must come fast, be the dialect's JSON (an error object when it is a 4xx), never
a 5xx from the sidecar itself, while `/healthz` stays alive and RSS stays bounded.
CI runs a bounded pass; `make fuzz MINUTES=10` runs the same properties for longer
(`FUZZ_SECONDS` is the budget the Makefile sets).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from proxy.config import parse_spec
from proxy.server.serve import Address, Sidecar

#: Seconds of fuzzing; CI keeps it short, `make fuzz` sets it from MINUTES.
BUDGET = float(os.environ.get("FUZZ_SECONDS", "15"))
#: Generous: one request on a shared 2-core machine, never the fuzzer's own overhead.
ANSWER_WITHIN = 5.0
RSS_GROWTH_MB = 300

VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}},
            "required": ["a"]}}},
    },
    "/v1/responses": {"model": "gpt-4o", "input": "hi", "max_output_tokens": 16},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8},
    "/v1/messages": {
        "model": "claude-sonnet-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1beta/models/gemini-2.5-flash:generateContent": {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 16, "responseMimeType": "application/json",
                             "responseSchema": {"type": "ARRAY", "items": {"type": "STRING"}}},
    },
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
#: Values that stress the limits: huge counts, bad types, deep or wide structures.
nasty = st.sampled_from(
    [10**9, -1, 0, 2.5, "", "x" * 5000, [], {}, None, True, [[[[[]]]]], {"$ref": "#"}]
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(VALID)))
    body = json.loads(json.dumps(VALID[path]))
    for _ in range(draw(st.integers(1, 3))):
        node: Any = body
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            child = node[key]
            if not isinstance(child, (dict, list)) or not child:
                break
            node = child
        if isinstance(node, dict):
            key = draw(st.sampled_from([*sorted(node), "n", "dimensions", "stream", "minItems"]))
            if draw(st.booleans()):
                node.pop(key, None)
            else:
                node[key] = draw(nasty | json_values)
    return path, json.dumps(body).encode()


random_body = st.tuples(
    st.sampled_from(sorted(VALID)),
    st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
)
odd_path = st.tuples(
    st.sampled_from(
        [
            "/v1beta/models/",
            "/v1/models/",
            "//evil.example/",
            "/v1/../admin",
            "/v1/chat/completions/",
        ]
    ).flatmap(lambda p: st.text(alphabet="ab.-_%2F3A?#@:/", max_size=20).map(lambda t: p + t)),
    st.just(b'{"contents":[{"parts":[{"text":"hi"}]}]}'),
)
odd_headers = st.dictionaries(
    st.sampled_from(["Host", "X-Forwarded-Host", "Forwarded", "x-request-id", "Content-Type",
                     "anthropic-version", "x-goog-api-key", "Authorization"]),
    st.text(alphabet="abc.:/@ -=;", max_size=30),
    max_size=3,
)  # fmt: skip


class Running:
    """A mock-only sidecar on its own loop in a thread, so hypothesis drives it synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        spec = parse_spec({"traffic": {"realWeight": 0}})
        self.sidecar = Sidecar(
            spec, None, listen=Address("127.0.0.1", 0), admin_listen=Address("127.0.0.1", 0)
        )
        asyncio.run_coroutine_threadsafe(self.sidecar.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sidecar.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    running = Running()
    yield running
    running.stop()


def send(
    port: int, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN * 2)
    started = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        return (
            response.status,
            response.getheader("content-type", ""),
            answer,
            time.monotonic() - started,
        )
    finally:
        conn.close()


def healthz(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def dialect_shaped(status: int, answer: bytes) -> None:
    assert status < 500, f"the sidecar answered {status}: {answer[:300]!r}"
    payload = json.loads(answer)  # never aiohttp's plain-text page
    if status >= 400:
        assert isinstance(payload, dict)
        assert "error" in payload, payload  # OpenAI, Anthropic and Gemini all nest it so


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_fuzz_every_endpoint(running: Running) -> None:
    data, admin = running.sidecar.data_port, running.sidecar.admin_port
    baseline = rss_mb()

    @settings(
        max_examples=100, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )  # fmt: skip
    @given(case=mutated() | random_body | odd_path, headers=odd_headers)
    def one(case: tuple[str, bytes], headers: dict[str, str]) -> None:
        path, body = case
        try:
            status, kind, answer, took = send(data, path, body, headers)
        except (http.client.InvalidURL, ValueError, UnicodeEncodeError):
            reject()  # http.client refuses to send it: no request to judge
        assert took < ANSWER_WITHIN, f"{path} took {took:.2f}s"
        if status == 200 and kind.startswith("text/event-stream"):
            assert answer.startswith((b"data:", b"event:")), answer[:200]
        else:
            dialect_shaped(status, answer)
        healthz(admin)

    deadline = time.monotonic() + BUDGET
    rounds = 0
    while time.monotonic() < deadline:
        one()
        rounds += 1
        assert rss_mb() - baseline < RSS_GROWTH_MB
    print(f"fuzz: {rounds} rounds of 100 examples in {BUDGET:.0f}s")
