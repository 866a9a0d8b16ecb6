"""Property-based fuzzing of the data port: whatever arrives, an answer in the dialect.

Hypothesis draws requests to every endpoint of every dialect: random JSON, valid
requests (the shapes the SDKs send) with fields mutated into hostile values (huge or
negative numbers, wrong types, random JSON schemas with `$ref` cycles and giant
bounds, random tools), raw bytes, odd paths and headers. One mock-only sidecar serves
them from its own thread and event loop (as a pod would, apart from the test). For
every request:

- an answer arrives within `ANSWER_SECONDS`;
- no 5xx: the mock injects no faults here, so a 5xx is the sidecar's own failure;
- the answer is in the dialect: JSON with the dialect's error object for a 4xx, a
  well-formed body or a complete SSE stream for a 200;
- `/healthz` answers within a second afterwards, and the process's peak RSS stays
  within `RSS_GROWTH_MB` of where it started.

`tests/test_fuzz.py` runs a bounded number of examples in CI; `make fuzz MINUTES=10`
(`python -m tests.fuzz --minutes 10`) keeps drawing until the time is up.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import sys
import threading
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.config import parse_spec
from proxy.server.serve import Address, Sidecar

ANSWER_SECONDS = 15.0
RSS_GROWTH_MB = 300.0
STEP_MB = 100.0
GEMINI = "/v1beta/models/gemini-2.5-flash"
#: path -> (dialect family, a valid body as the SDK sends it)
ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "/v1/chat/completions": ("openai", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write a tweet"}]}),
    "/v1/responses": ("openai", {"model": "gpt-4o-mini", "input": "Write an email"}),
    "/v1/embeddings": ("openai", {"model": "text-embedding-3-small", "input": ["a", "b"]}),
    "/v1/messages": ("anthropic", {
        "model": "claude-haiku-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "Write an ad"}]}),
    f"{GEMINI}:generateContent": ("gemini", {
        "contents": [{"role": "user", "parts": [{"text": "Write a post"}]}]}),
    f"{GEMINI}:streamGenerateContent?alt=sse": ("gemini", {
        "contents": [{"role": "user", "parts": [{"text": "Write a post"}]}]}),
}  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
big_ints = st.sampled_from([0, 1, -1, 7, 2**31, 10**8, 10**12, 16_384, 100_000, 2_049])


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """JSON-schema-like objects: valid ones, giant bounds, contradictions, $ref cycles."""
    kind = draw(st.sampled_from(["object", "array", "string", "integer", "ref", "any", "junk"]))
    if kind == "junk" or depth > 3:
        value = draw(json_values)
        return value if isinstance(value, dict) else {"type": "string"}
    if kind == "ref":
        return {"$ref": draw(st.sampled_from(["#/$defs/A", "#/$defs/missing", "http://x/y"]))}
    if kind == "object":
        props = draw(st.dictionaries(st.text(min_size=1, max_size=8),
                                     schemas(depth + 1), max_size=3))  # fmt: skip
        required = draw(st.lists(st.sampled_from([*props, "extra"]), max_size=3)) if props else []
        return {"type": "object", "properties": props, "required": required,
                "additionalProperties": draw(st.booleans())}  # fmt: skip
    if kind == "array":
        low, high = draw(big_ints), draw(st.none() | big_ints)
        node: dict[str, Any] = {"type": "array", "items": draw(schemas(depth + 1)),
                                "minItems": low}  # fmt: skip
        if high is not None:
            node["maxItems"] = high
        return node
    if kind == "string":
        return {"type": "string", "minLength": draw(big_ints), "maxLength": draw(big_ints)}
    if kind == "integer":
        return {"type": "integer", "minimum": draw(big_ints), "maximum": draw(big_ints)}
    return {}


@st.composite
def mutated(draw: st.DrawFn, family: str, base: dict[str, Any]) -> dict[str, Any]:
    body = dict(base)
    schema = draw(schemas())
    if draw(st.booleans()):
        schema = {"$defs": {"A": draw(schemas(1)) | {"required": ["self"], "properties": {
            "self": {"$ref": "#/$defs/A"}}}}, **schema}  # fmt: skip
    hostile: dict[str, Any] = {
        "max_tokens": draw(big_ints), "max_completion_tokens": draw(big_ints),
        "max_output_tokens": draw(big_ints), "n": draw(big_ints), "dimensions": draw(big_ints),
        "stream": draw(st.booleans() | json_values), "temperature": draw(json_values),
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "x", "schema": schema,
                                            "strict": draw(st.booleans())}},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}},
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "tools": [{"type": "function", "function": {"name": "t", "parameters": schema}},
                  {"name": "t", "input_schema": schema, "parameters": schema},
                  {"functionDeclarations": [{"name": "t", "parameters": schema}]}],
        "generationConfig": {"maxOutputTokens": draw(big_ints), "candidateCount": draw(big_ints),
                             "responseMimeType": "application/json",
                             "responseJsonSchema": schema},
        "input": draw(st.lists(st.text(max_size=5), max_size=3) | json_values),
    }  # fmt: skip
    for key in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=4, unique=True)):
        body[key] = hostile[key]
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=2, unique=True)):
        if draw(st.booleans()):
            del body[key]
        else:
            body[key] = draw(json_values)
    return body


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    """(family, path, body bytes, headers)."""
    path = draw(st.sampled_from(sorted(ENDPOINTS)))
    family, base = ENDPOINTS[path]
    shape = draw(st.sampled_from(["mutated", "mutated", "random-json", "bytes", "odd-path"]))
    if shape == "odd-path":
        tail = draw(st.text(alphabet="abc/%.?#:2F3E0aA-_ \t", max_size=30))
        path = draw(st.sampled_from(["/v1/", f"{GEMINI}", "/v1beta/models/", "/"])) + tail
        path = "/" + path.lstrip("/").replace(" ", "%20").replace("\t", "%09")
    if shape == "bytes":
        body = draw(st.binary(max_size=200))
    elif shape == "random-json":
        body = json.dumps(draw(json_values)).encode()
    else:
        body = json.dumps(draw(mutated(family, base))).encode()
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    if draw(st.booleans()):
        headers["x-llm-task"] = draw(st.text(alphabet="abcdefghij_", max_size=20))
    if draw(st.booleans()):
        headers["x-brand-context"] = draw(
            st.sampled_from(
                ["{", "[]", '{"name": 5}', '{"name": "Acme", "avoid": ["cheap"]}', "x" * 300]
            )
        )
    return family, path, body, headers


class Target:
    """A mock-only sidecar in its own thread and event loop; requests go to it over TCP."""

    def __init__(self) -> None:
        self.sidecar: Sidecar | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        spec = parse_spec({"traffic": {"realWeight": 0}, "mock": {"seed": 3}})
        self.sidecar = Sidecar(spec, None, listen=Address("127.0.0.1", 0),
                               admin_listen=Address("127.0.0.1", 0))  # fmt: skip
        asyncio.run_coroutine_threadsafe(self.sidecar.start(), self._loop).result(10)
        self.rss_start = _peak_rss_mb()

    def close(self) -> None:
        assert self.sidecar is not None
        asyncio.run_coroutine_threadsafe(self.sidecar.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def send(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        assert self.sidecar is not None
        conn = http.client.HTTPConnection("127.0.0.1", self.sidecar.data_port,
                                          timeout=ANSWER_SECONDS)  # fmt: skip
        try:
            conn.request("POST", path, body, {k: v for k, v in headers.items() if v})
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        finally:
            conn.close()

    def healthy(self) -> bool:
        assert self.sidecar is not None
        conn = http.client.HTTPConnection("127.0.0.1", self.sidecar.admin_port, timeout=1.0)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def family_of(path: str, headers: dict[str, str]) -> str:
    """The dialect a request's answer must be in (as the sidecar guesses it for odd paths)."""
    for known, (family, _) in ENDPOINTS.items():
        if path == known.partition("?")[0] or path == known:
            return family
    if path.startswith("/v1beta"):
        return "gemini"
    return "openai"


def check(family: str, path: str, status: int, content_type: str, body: bytes) -> None:
    """Raise AssertionError when the answer is not one the client's SDK can read."""
    assert status < 500, f"{path}: the sidecar answered {status}: {body[:300]!r}"
    if content_type.startswith("text/event-stream"):
        assert status == 200
        last = body.rstrip().rsplit(b"\n\n", 1)[-1]
        assert last.startswith((b"data: ", b"event: ")), f"{path}: stream ends with {last!r}"
        return
    assert content_type.startswith("application/json"), f"{path}: {content_type} {body[:200]!r}"
    payload = json.loads(body)
    if status < 400:
        return
    if family == "anthropic":
        assert payload["type"] == "error", payload
        assert payload["error"]["message"], payload
    elif family == "gemini":
        assert payload["error"]["status"], payload
        assert payload["error"]["code"] == status, payload
    else:
        assert payload["error"]["message"], payload


#: the request being answered, for the RSS watchdog to print if it has to stop the run
in_flight: list[tuple[str, bytes, dict[str, str]]] = []


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def watch_rss(limit_mb: float) -> None:
    """Stop the process with the request in flight when RSS passes `limit_mb`.

    A request that makes the sidecar allocate without bound would otherwise end in the
    kernel's OOM kill, which names no request; this names it.
    """

    def watch() -> None:
        while True:
            if _current_rss_mb() > limit_mb:
                print(f"RSS passed {limit_mb:.0f} MB while answering: {in_flight!r:.4000}",
                      file=sys.stderr, flush=True)  # fmt: skip
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def fuzz_once(target: Target, request: tuple[str, str, bytes, dict[str, str]]) -> None:
    _, path, body, headers = request
    in_flight[:] = [(path, body, headers)]
    peak_before = _peak_rss_mb()
    started = time.monotonic()
    status, content_type, answer = target.send(path, body, headers)
    assert time.monotonic() - started < ANSWER_SECONDS
    check(family_of(path, headers), path, status, content_type, answer)
    assert target.healthy(), "/healthz did not answer within a second"
    jump = _peak_rss_mb() - peak_before
    # the peak is sticky, so the request that raised it is named here (a replay would not)
    assert jump < STEP_MB, f"{path} raised peak RSS by {jump:.0f} MB: {body[:3000]!r}"
    growth = _peak_rss_mb() - target.rss_start
    assert growth < RSS_GROWTH_MB, f"peak RSS grew {growth:.0f} MB"


def run_for(target: Target, examples: int) -> None:
    """`examples` random requests (a fresh random draw each call)."""

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(requests())
    def one(request: tuple[str, str, bytes, dict[str, str]]) -> None:
        fuzz_once(target, request)

    one()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    target = Target()
    watch_rss(target.rss_start + 2 * RSS_GROWTH_MB)
    deadline = time.monotonic() + args.minutes * 60
    rounds = 0
    try:
        while time.monotonic() < deadline:
            run_for(target, 200)
            rounds += 1
            print(f"{rounds * 200:,} requests, no failure; peak RSS "
                  f"{_peak_rss_mb():.0f} MB", flush=True)  # fmt: skip
    finally:
        target.close()
    print(f"fuzz: {rounds * 200:,} requests over {args.minutes:g} min, nothing found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
