"""Building a mock answer for a request in its dialect.

The mock writes the hub format only (`proxy.mock.hub`, OpenAI chat) and has
`proxy.translate` turn it into the client's dialect: the same translation that
serves a client from another dialect's provider, so the mock cannot drift from it.
Embeddings, which have no translation, are rendered apart (`openai_embeddings`).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from typing import Any

from proxy.config.model import MockSpec
from proxy.dialects import ROUTES, ParsedRequest, Usage
from proxy.dialects.base import dumps
from proxy.dialects.gemini import JsonArrayStream
from proxy.marketing import Brand, brand_from_system, recognise_task, system_text
from proxy.mock import hub, openai_embeddings
from proxy.mock.content import TASK_SCHEMAS, MockContext, write
from proxy.mock.draft import Answer, Draft, ToolCall
from proxy.mock.phrases import amounts_of, counts_of, place_of, read
from proxy.mock.prompted import continuation
from proxy.mock.prompts import PROMPTS
from proxy.mock.schema import Hints, generate
from proxy.mock.simulate import (
    cut_stream,
    draw_fault,
    fault_response,
    first_token_seconds,
    generation_seconds,
    simulation_rng,
)
from proxy.mock.structured import Wanted, wanted
from proxy.mock.text import compose, first_words, request_rng
from proxy.tokens import count_request, count_text
from proxy.translate import client_answer, client_stream

_BY_NAME = {dialect.name: dialect for _, dialect in ROUTES}
#: Words (or bits of JSON) per streamed chunk where a provider sends more than about one
#: token at a time: Gemini streams a few words per chunk.
_PIECES = {"gemini.generate_content": 4}
#: Dialects that answer with vectors, not generated text: they produce no output tokens.
_NO_OUTPUT = frozenset({"openai.embeddings"})


def answer(
    dialect: str, request: ParsedRequest, spec: MockSpec, context: MockContext | None = None
) -> Answer:
    """The mock's whole answer to `request`; `context` carries what the headers said."""
    context = context or MockContext()
    rng = request_rng(spec.seed, request.raw)
    prompt = PROMPTS[dialect](request.payload)
    task = context.task or recognise_task(prompt)
    brand = context.brand or brand_from_system(system_text(request.payload))
    shape = wanted(dialect, request.payload, prompt)
    # The name the tokenizer is chosen by: none (the estimate) unless exact counts are wanted.
    counted_as = request.model if spec.token_count == "exact" else ""
    draft = _draft(dialect, rng, prompt, request, shape, task, brand, counted_as)
    body, events = _render(dialect, request, draft)
    output_tokens = 0 if dialect in _NO_OUTPUT else draft.output_tokens
    usage = Usage(input_tokens=draft.input_tokens, output_tokens=output_tokens)
    if context.fallback:
        spec = MockSpec(seed=spec.seed)  # no simulated faults or latency for a fallback
    sim = simulation_rng(spec.seed, request.raw, context.occurrence)
    fault = draw_fault(spec.errors, sim, request.stream)
    if fault is not None and fault != "stream_cut":
        failed = fault_response(fault, _BY_NAME[dialect], spec.errors, context.request_id)
        return Answer(
            failed.status,
            "application/json",
            body=failed.body,
            headers=failed.headers,
            wait=failed.wait,
            fault=fault,
        )
    first = first_token_seconds(spec.latency, sim)
    writing = generation_seconds(spec.latency, output_tokens)
    if not request.stream:
        return Answer(200, "application/json", body=body, usage=usage, wait=first + writing)
    if fault == "stream_cut":
        sent = len(events)
        events, kept = cut_stream(events, _BY_NAME[dialect], sim)
        usage.output_tokens = output_tokens * kept // max(1, sent)
        writing = writing * kept / max(1, sent)
    step = writing / (len(events) - 1) if len(events) > 1 else 0.0
    delays = [first] + [step] * (len(events) - 1) if events else []
    return Answer(200, "text/event-stream", events=events, delays=delays, usage=usage, fault=fault)


def _render(dialect: str, request: ParsedRequest, draft: Draft) -> tuple[bytes, list[bytes]]:
    """The body, or the stream's events (one per hub chunk that wrote something)."""
    if dialect == "openai.embeddings":
        return openai_embeddings.render(request, draft), []
    if not request.stream:
        return dumps(client_answer(dialect, hub.answer(request, draft), request.payload)), []
    stream = client_stream(dialect, request.payload)
    pieces = _PIECES.get(dialect, 1)
    events = [stream.feed(chunk) for chunk in hub.chunks(request, draft, pieces)]
    events.append(stream.close())
    return b"", [event for event in events if event]


def as_json_array(answer: Answer) -> Answer:
    """A streamed answer as ``streamGenerateContent`` without ``?alt=sse`` sends it: one
    JSON array of the chunks (`JsonArrayStream`), written whole once the time the
    chunks would take has passed. Errors are JSON already: unchanged."""
    if not answer.events:
        return answer
    array = JsonArrayStream()
    body = b"".join(array.feed(event) for event in answer.events) + array.close()
    return replace(
        answer,
        content_type="application/json",
        body=body,
        events=[],
        delays=[],
        wait=answer.wait + sum(answer.delays),
    )


def _within(model: str, text: str, max_tokens: int | None) -> str:
    """`text` shortened word by word until the model's tokenizer counts <= `max_tokens`."""
    while max_tokens is not None and " " in text and count_text(model, text) > max_tokens:
        text = text[: text.rstrip().rfind(" ")].rstrip()
    return text


def _hints(prompt: str, brand: Brand | None) -> Hints:
    """Generated JSON speaks of the request's subject and brand, like the text answers do."""
    brand = brand or Brand()
    reading = read(prompt)
    return Hints(
        reading.subject,
        brand.name,
        brand.keywords,
        brand.avoid,
        brand.audience or reading.audience,
        place_of(prompt),
        amounts_of(prompt),
        counts_of(prompt),
    )


def _ident(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))


def _draft(
    dialect: str,
    rng: random.Random,
    prompt: str,
    request: ParsedRequest,
    shape: Wanted | None,
    task: str | None,
    brand: Brand | None,
    counted_as: str,
) -> Draft:
    """The content: text for the task, JSON valid against the asked schema, or a tool call."""
    ident = _ident(rng)
    text, calls, whole = "", [], ""
    if shape is None:
        whole = write(task, rng, prompt, brand) if task else compose(rng, prompt)
        text = _within(counted_as, first_words(whole, request.max_tokens), request.max_tokens)
    elif shape.kind == "json":
        fallback = TASK_SCHEMAS.get(task or "", _ANY_OBJECT)
        whole = _json(generate(shape.schema or fallback, rng, shape.name, _hints(prompt, brand)))
        text = continuation(whole, shape.prefill)
    else:
        arguments = _json(
            generate(shape.schema or _ANY_OBJECT, rng, shape.name, _hints(prompt, brand))
        )
        calls = [ToolCall(_ident(rng), shape.name, arguments)]
    produced = text + "".join(c.name + c.arguments for c in calls)
    return Draft(
        rng=rng,
        text=text,
        input_tokens=count_request(dialect, request.payload, counted_as),
        output_tokens=count_text(counted_as, produced),
        created=int(time.time()),
        ident=ident,
        tool_calls=calls,
        structured=shape is not None,
        truncated=shape is None and text != whole,
    )


#: JSON mode without a schema: an object with content-like fields.
_ANY_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "content": {"type": "string"}},
    "required": ["title", "content"],
    "additionalProperties": False,
}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
