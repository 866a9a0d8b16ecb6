"""Chaos scenarios: fault-injecting fake providers behind a real sidecar, driven by the SDKs.

Each scenario starts its own fakes and sidecar on loopback, sends requests with
an official SDK (`max_retries=0`: only the sidecar retries), and returns a
`Report` of what happened: requests sent and answered, which backend answered
each, how many calls every fake provider received, breaker transitions. The
tests in `test_chaos.py` assert on these reports; `python -m tests.chaos_report`
runs the same scenarios and writes their figures into `docs/resilience.md`.

"Answered" means the client got an answer in its own dialect: a parsed result,
or an error the SDK parsed from a dialect-correct body or stream error event.
A connection error or a foreign error shape would be a lost request.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from proxy.config import parse_spec
from proxy.server.serve import Address, Sidecar
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeProvider, Fault
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Write a tagline for running shoes"}]
KEY_ENV = {"CHAOS_OPENAI_KEY": "sk-real-openai-test-0000000000",
           "CHAOS_ANTHROPIC_KEY": "sk-ant-real-test-000000000000",
           "CHAOS_GEMINI_KEY": "AIzaRealGeminiTestKey000000000000000000"}  # fmt: skip
KEY_ENV_OF = {"openai": "CHAOS_OPENAI_KEY", "anthropic": "CHAOS_ANTHROPIC_KEY",
              "gemini": "CHAOS_GEMINI_KEY"}  # fmt: skip

#: Small numbers so that a breaker opens and closes within a second or two.
BREAKER = {"failureRatio": 0.5, "minRequests": 4, "windowSeconds": 10, "openSeconds": 1,
           "halfOpenProbes": 1}  # fmt: skip
RETRY = {"maxAttempts": 2, "initialBackoffMs": 10, "maxBackoffMs": 50, "deadlineMs": 5000}
TIMEOUTS = {"connectMs": 500, "firstByteMs": 300, "totalMs": 5000}


@dataclass
class Report:
    scenario: str
    sent: int = 0
    answered: int = 0
    succeeded: int = 0
    by_backend: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    attempts: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    lost: list[str] = field(default_factory=list)

    def note(self, backend: str, reason: str, error: str | None) -> None:
        self.answered += 1
        self.by_backend[backend] += 1
        self.reasons[reason] += 1
        if error is None:
            self.succeeded += 1
        else:
            self.errors[error] += 1


@dataclass
class Lab:
    """One scenario's world: named fakes, a sidecar in front of them, SDK clients."""

    sidecar: Sidecar
    fakes: dict[str, FakeProvider]
    report: Report
    openai: openai.AsyncOpenAI = field(init=False)
    anthropic: anthropic.AsyncAnthropic = field(init=False)
    gemini: genai.Client = field(init=False)

    def __post_init__(self) -> None:
        base = f"http://127.0.0.1:{self.sidecar.data_port}"
        self.openai = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="app-key", max_retries=0)
        self.anthropic = anthropic.AsyncAnthropic(base_url=base, api_key="app-key", max_retries=0)
        self.gemini = genai.Client(  # google-genai does not retry unless told to
            api_key="app-key", http_options=genai_types.HttpOptions(base_url=base)
        )

    def breaker(self, provider: str) -> str:
        return self.sidecar.runtime.resilience.states(self.sidecar.runtime.clock())[provider].label

    def transitions(self, provider: str, to: str) -> int:
        counter = self.sidecar.runtime.metrics.breaker_transitions.labels(provider, to)
        return int(counter._value.get())

    async def chat(self, *, stream: bool = False, tenant: str | None = None) -> None:
        """One OpenAI chat request, recorded in the report."""
        self.report.sent += 1
        extra = {"x-tenant-id": tenant} if tenant else None
        headers: Any = {}
        try:
            raw = await self.openai.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=ASK, stream=stream, extra_headers=extra
            )  # type: ignore[call-overload]
            headers = raw.headers
            result = await _parsed(raw)
            if stream:
                text = "".join(
                    [c.choices[0].delta.content or "" async for c in result if c.choices]
                )
            else:
                text = result.choices[0].message.content
            assert text, "an answer with content"
            self.report.note(headers["x-llm-backend"], headers["x-llm-route-reason"], None)
        except openai.APIStatusError as error:
            self._error(error.response.headers, f"http-{error.status_code}", error.body)
        except openai.APIConnectionError as error:
            self.report.lost.append(f"connection: {error}")
        except openai.APIError as error:  # an error event inside the stream
            self._stream_error(headers, str(error))

    async def message(self, *, stream: bool = False) -> None:
        """One Anthropic messages request, recorded in the report."""
        self.report.sent += 1
        client = self.anthropic
        headers: Any = {}
        try:
            if stream:
                raw = await client.messages.with_raw_response.create(
                    model="claude-sonnet-5", max_tokens=64, messages=ASK, stream=True
                )  # type: ignore[call-overload]
                headers, text = raw.headers, ""
                async for event in await _parsed(raw):
                    if event.type == "content_block_delta":
                        text += event.delta.text
            else:
                raw = await client.messages.with_raw_response.create(
                    model="claude-sonnet-5", max_tokens=64, messages=ASK
                )
                headers, text = raw.headers, (await _parsed(raw)).content[0].text
            assert text, "an answer with content"
            self.report.note(headers["x-llm-backend"], headers["x-llm-route-reason"], None)
        except anthropic.APIStatusError as error:
            if error.response.status_code == 200:  # `event: error` inside a stream
                self._stream_error(headers, str(error))
            else:
                self._error(error.response.headers, f"http-{error.status_code}", error.body)
        except anthropic.APIConnectionError as error:
            self.report.lost.append(f"connection: {error}")

    async def generate(self, *, stream: bool = False) -> None:
        """One Gemini generateContent request, recorded in the report."""
        self.report.sent += 1
        client = self.gemini.aio
        model = "gemini-2.5-flash"
        headers: Any = {}
        try:
            if stream:
                text = ""
                async for chunk in await client.models.generate_content_stream(
                    model=model, contents=ASK[0]["content"]
                ):
                    if chunk.sdk_http_response is not None and not headers:
                        headers = chunk.sdk_http_response.headers or {}
                    text += chunk.text or ""
            else:
                response = await client.models.generate_content(
                    model=model, contents=ASK[0]["content"]
                )
                assert response.sdk_http_response is not None
                headers, text = response.sdk_http_response.headers or {}, response.text
            assert text, "an answer with content"
            self.report.note(headers["x-llm-backend"], headers["x-llm-route-reason"], None)
        except genai_errors.APIError as error:
            if headers:  # the error arrived inside a stream that had begun
                self._stream_error(headers, str(error))
            else:
                response_headers = error.response.headers if error.response is not None else {}
                self._error(response_headers, f"http-{error.code}", error.details)

    def _error(self, headers: Any, label: str, body: object) -> None:
        if not isinstance(body, dict) or (not body.get("message") and not body.get("error")):
            self.report.lost.append(f"{label} with a foreign body: {body!r}")
            return
        self.report.note(headers.get("x-llm-backend", "?"), headers.get("x-llm-route-reason", "?"),
                         label)  # fmt: skip

    def _stream_error(self, headers: Any, message: str) -> None:
        if "before completion" not in message:
            self.report.lost.append(f"unexpected stream error: {message}")
            return
        self.report.note(
            headers.get("x-llm-backend", "?"), headers.get("x-llm-route-reason", "?"),
            "stream-error-event",
        )  # fmt: skip

    def calls(self, provider: str) -> int:
        """Calls the sidecar made to a provider (refused connections included)."""
        metric = self.sidecar.runtime.metrics.attempts
        return int(
            sum(
                sample.value
                for family in metric.collect()
                for sample in family.samples
                if sample.name.endswith("_total")
                and sample.labels["provider"] == provider
                and not sample.labels["outcome"].startswith("stream-")
            )
        )


async def _parsed(raw: Any) -> Any:
    """`raw.parse()` of the SDK's raw response (a coroutine in some SDK versions)."""
    parsed = raw.parse()
    return await parsed if inspect.isawaitable(parsed) else parsed


@contextlib.asynccontextmanager
async def lab(
    name: str, spec: dict[str, Any], fakes: dict[str, FakeProvider]
) -> AsyncIterator[Lab]:
    """Fakes started, a sidecar over `spec` started; figures collected on the way out."""
    for env, value in KEY_ENV.items():
        os.environ.setdefault(env, value)
    for fake in fakes.values():
        await fake.start()
    providers = []
    for provider_name, fake in fakes.items():
        is_openai = isinstance(fake, FakeOpenAI)  # its baseURL ends in /v1, like the SDK's
        providers.append({
            "name": provider_name,
            "type": fake.kind,
            "baseURL": f"{fake.base}/v1" if is_openai else fake.base,
            "apiKey": {"env": KEY_ENV_OF[fake.kind]},
            "timeouts": TIMEOUTS,
        })  # fmt: skip
    full = {"providers": providers, "traffic": {"realWeight": 100},
            "circuitBreaker": BREAKER, "retry": RETRY} | spec  # fmt: skip
    sidecar = Sidecar(
        parse_spec(full), None, listen=Address("127.0.0.1", 0), admin_listen=Address("127.0.0.1", 0)
    )
    await sidecar.start()
    world = Lab(sidecar, fakes, Report(name))
    started = time.monotonic()
    try:
        yield world
    finally:
        world.report.seconds = round(time.monotonic() - started, 2)
        world.report.attempts = {n: world.calls(n) for n in fakes}
        world.report.transitions = {
            n: {to: world.transitions(n, to) for to in ("open", "half-open", "closed")}
            for n in fakes
        }
        await world.openai.close()
        await world.anthropic.close()
        await world.gemini.aio.aclose()
        await sidecar.stop()
        for fake in fakes.values():
            await fake.stop()


async def wait_until_half_open(world: Lab, provider: str, limit: float = 3.0) -> None:
    """Real time passes until the breaker lets a probe through (openSeconds is 1)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if world.breaker(provider) != "open":
            return
        await asyncio.sleep(0.05)


# -- scenarios ---------------------------------------------------------------------------------
# Each returns its Report plus the facts its test asserts beyond the report.


@dataclass
class Result:
    report: Report
    facts: dict[str, Any] = field(default_factory=dict)


async def burst_5xx() -> Result:
    """Primary answers 500/503 to everything for a while; backup is healthy; then recovery."""
    primary, backup = FakeOpenAI(), FakeOpenAI()
    primary.faults.extend(Fault(status=500 if i % 2 else 503) for i in range(200))
    spec = {"fallback": ["primary", "backup", "mock"]}
    async with lab("5xx burst → fallback", spec, {"primary": primary, "backup": backup}) as world:
        for _ in range(20):
            await world.chat()
        facts: dict[str, Any] = {"outage_attempts": len(primary.requests)}
        facts["open_during_outage"] = world.breaker("primary")
        primary.faults.clear()  # the provider recovers
        await wait_until_half_open(world, "primary")
        for _ in range(10):
            await world.chat()
        facts["after_recovery"] = world.breaker("primary")
    return Result(world.report, facts)


async def overloaded_529() -> Result:
    """The only Anthropic provider is overloaded (529): the mock answers, then it recovers."""
    fake = FakeAnthropic()
    fake.faults.extend(Fault(status=529) for _ in range(200))
    spec = {"fallback": ["claude", "mock"]}
    async with lab("529 storm → mock", spec, {"claude": fake}) as world:
        for i in range(20):
            await world.message(stream=i % 2 == 1)
        facts: dict[str, Any] = {"outage_attempts": len(fake.requests)}
        facts["open_during_outage"] = world.breaker("claude")
        fake.faults.clear()
        await wait_until_half_open(world, "claude")
        for _ in range(6):
            await world.message()
        facts["after_recovery"] = world.breaker("claude")
    return Result(world.report, facts)


async def slow_first_byte() -> Result:
    """Primary takes longer than firstByteMs (300 ms) to answer: timeouts, then fallback."""
    primary, backup = FakeOpenAI(), FakeOpenAI()
    primary.faults.extend(Fault(first_byte_delay=0.6) for _ in range(200))
    spec = {"fallback": ["primary", "backup"]}
    async with lab("slow first byte → fallback", spec, {"primary": primary, "backup": backup}) as w:
        for _ in range(8):
            await w.chat()
        facts: dict[str, Any] = {"outage_attempts": len(primary.requests)}
        facts["open_during_outage"] = w.breaker("primary")
    return Result(w.report, facts)


async def mid_stream(kind: str) -> Result:
    """Primary streams a little and then stalls (silence > firstByteMs) or drops the connection.

    Nothing can be retried once chunks reached the client: the stream must end with
    the dialect's error event, count against the breaker, and later requests must go
    to the backup while the breaker is open.
    """
    primary, backup = FakeOpenAI(), FakeOpenAI()
    fault = (
        Fault(stall_after_chunks=2, stall_seconds=1.0)
        if kind == "stall"
        else Fault(cut_after_chunks=2)
    )
    primary.faults.extend(fault for _ in range(200))
    spec = {"fallback": ["primary", "backup"]}
    name = f"stream {'stalled' if kind == 'stall' else 'cut'} mid-way → error event, fallback"
    async with lab(name, spec, {"primary": primary, "backup": backup}) as world:
        for _ in range(10):
            await world.chat(stream=True)
        metric = world.sidecar.runtime.metrics.stream_errors
        label = "stalled" if kind == "stall" else "cut"
        facts: dict[str, Any] = {
            "outage_attempts": len(primary.requests),
            "open_during_outage": world.breaker("primary"),
            "stream_errors_counted": int(
                metric.labels("openai.chat", "primary", label)._value.get()
            ),
        }
    return Result(world.report, facts)


async def rate_limit_429() -> Result:
    """429 storms: a short retry-after-ms is waited out on the same provider; a long
    retry-after (beyond maxBackoffMs) pauses the provider and sends traffic to the backup."""
    primary, backup = FakeOpenAI(), FakeOpenAI()
    spec = {"fallback": ["primary", "backup"]}
    async with lab("429 storm with retry-after", spec, {"primary": primary, "backup": backup}) as w:
        primary.faults.append(Fault(status=429, headers={"retry-after-ms": "30"}))
        await w.chat()
        facts: dict[str, Any] = {"short_wait_attempts": len(primary.requests)}
        primary.faults.extend(Fault(status=429, headers={"retry-after": "1"}) for _ in range(50))
        for _ in range(10):
            await w.chat()
        facts["storm_attempts"] = len(primary.requests) - facts["short_wait_attempts"]
        await asyncio.sleep(1.1)  # the provider's retry-after has passed
        primary.faults.clear()
        for _ in range(3):
            await w.chat()
        facts["after_pause_primary"] = len(primary.requests)
    return Result(w.report, facts)


async def connection_refused() -> Result:
    """Primary is down (nothing listens on its port): fallback, breaker opens, comes back."""
    primary, backup = FakeOpenAI(), FakeOpenAI()
    spec = {"fallback": ["primary", "backup", "mock"]}
    async with lab(
        "connection refused → fallback", spec, {"primary": primary, "backup": backup}
    ) as w:
        port = primary.port
        await primary.stop()
        for i in range(12):
            await w.chat(stream=i % 3 == 0)
        facts: dict[str, Any] = {"open_during_outage": w.breaker("primary")}
        facts["unreachable_attempts"] = int(
            w.sidecar.runtime.metrics.attempts.labels("primary", "unreachable")._value.get()
        )
        await primary.start(port)  # the provider is back
        await wait_until_half_open(w, "primary")
        for _ in range(5):
            await w.chat()
        facts["after_recovery"] = w.breaker("primary")
        facts["served_by_primary_after"] = len(primary.requests)
    return Result(w.report, facts)


async def concurrent_5xx() -> Result:
    """60 requests, 12 at a time, while the primary fails every call: nothing lost."""
    primary, backup = FakeOpenAI(), FakeOpenAI()
    primary.faults.extend(Fault(status=503) for _ in range(500))
    spec = {"fallback": ["primary", "backup", "mock"]}
    async with lab(
        "concurrent 503s (12 in flight)", spec, {"primary": primary, "backup": backup}
    ) as w:
        gate = asyncio.Semaphore(12)

        async def one(i: int) -> None:
            async with gate:
                await w.chat(stream=i % 2 == 0)

        await asyncio.gather(*(one(i) for i in range(60)))
        facts: dict[str, Any] = {"outage_attempts": len(primary.requests), "in_flight": 12}
    return Result(w.report, facts)


async def gemini_503() -> Result:
    """Gemini answers 503 UNAVAILABLE to everything: the mock answers in Gemini's shape."""
    fake = FakeGemini()
    fake.faults.extend(Fault(status=503) for _ in range(200))
    spec = {"fallback": ["gemini", "mock"]}
    async with lab("Gemini 503 storm → mock", spec, {"gemini": fake}) as world:
        for i in range(12):
            await world.generate(stream=i % 2 == 1)
        facts: dict[str, Any] = {"outage_attempts": len(fake.requests)}
        facts["open_during_outage"] = world.breaker("gemini")
        fake.faults.clear()
        await wait_until_half_open(world, "gemini")
        for i in range(4):
            await world.generate(stream=i % 2 == 1)
        facts["after_recovery"] = world.breaker("gemini")
    return Result(world.report, facts)


SCENARIOS: dict[str, Callable[[], Awaitable[Result]]] = {
    "burst_5xx": burst_5xx,
    "overloaded_529": overloaded_529,
    "slow_first_byte": slow_first_byte,
    "stall_mid_stream": lambda: mid_stream("stall"),
    "cut_mid_stream": lambda: mid_stream("cut"),
    "rate_limit_429": rate_limit_429,
    "connection_refused": connection_refused,
    "concurrent_5xx": concurrent_5xx,
    "gemini_503": gemini_503,
}
