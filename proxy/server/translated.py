"""Relaying a provider's answer to a client of another dialect, translated on the way.

The translated twin of `relay.relay`: same contract (nothing is sent before the
provider's status and first bytes are in; a cut stream ends with the client
dialect's error event), but the answer is rewritten by `proxy.translate`: a body
whole, a stream event by event as it arrives. Usage is read from what the provider
sent, in the provider's dialect, since that is what it bills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.dialects import ErrorKind, Usage
from proxy.dialects.gemini import JsonArrayStream
from proxy.quality import Accumulator, extractable
from proxy.redact import Redactor
from proxy.server import tracing
from proxy.server.cache import CACHE_TAP
from proxy.server.outcome import Outcome
from proxy.server.quality import ANSWER, Seen
from proxy.server.relay import (
    UpstreamFailure,
    client_headers,
    end_stream,
    first_chunk,
    observe,
    pump,
)
from proxy.sse import SSEParser
from proxy.translate import Translation, Upstream

#: Provider headers that describe the provider's own body, not the translated one.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def gemini_json_stream(request: web.Request) -> bool:
    """``streamGenerateContent`` without ``?alt=sse``: Gemini answers one JSON array."""
    return request.match_info.get("method") == "streamGenerateContent" and (
        request.query.get("alt") != "sse"
    )


async def relay_translated(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    translation: Translation,
    sent: Upstream,
    extra_headers: Mapping[str, str],
    redactor: Redactor,
) -> tuple[web.StreamResponse, Outcome]:
    """Copy the provider's answer to the app in the app's dialect (see module doc)."""
    client, provider = translation.client, translation.provider_dialect
    kept = {k: redactor.text(v) for k, v in upstream.headers.items()}
    headers = CIMultiDict(
        {k: v for k, v in client_headers(kept).items() if k.lower() not in _BODY_HEADERS}
    )
    for name, value in extra_headers.items():
        headers[name] = value
    outcome = Outcome(upstream.status)
    loop = asyncio.get_running_loop()
    if upstream.content_type != "text/event-stream" or upstream.status != 200:
        try:
            body = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamFailure(
                ErrorKind.UPSTREAM, f"answer cut short: {error}", outcome="cut"
            ) from None
        finally:
            upstream.release()
        outcome.first_byte_at = loop.time()
        outcome.complete = True
        if upstream.status == 200:
            outcome.usage.merge(provider.usage_from_body(body) or Usage())
        status, translated = translation.answer(upstream.status, body, sent.turn)
        outcome.status = status
        if status == 200 and extractable(client.name):
            request[ANSWER] = Seen(body=translated)
        translated = redactor.whole(translated)
        return web.Response(
            status=status, body=translated, headers=headers, content_type="application/json"
        ), outcome

    chunk = await first_chunk(upstream)
    # A Gemini client that did not ask for ?alt=sse gets the events' chunks as one JSON
    # array, written as they arrive like the events would be.
    array = JsonArrayStream() if gemini_json_stream(request) else None
    headers["Content-Type"] = "text/event-stream" if array is None else "application/json"
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    stream = translation.stream(sent.turn)
    parser, echo = SSEParser(), SSEParser()
    answer = Accumulator(client.name) if extractable(client.name) else None
    cache_tap = request.get(CACHE_TAP)
    traced = tracing.stream_trace(request)

    async def step(chunk: bytes) -> None:
        events = list(parser.feed(chunk))
        observe(events, provider, outcome)
        sent_now = redactor.feed(b"".join(stream.feed(event) for event in events))
        if sent_now:
            written = sent_now if array is None else array.feed(sent_now)
            await response.write(written)
            if cache_tap is not None:
                cache_tap.chunks.append(written)
            if answer is not None or traced is not None:  # the events as the app reads them
                for event in echo.feed(sent_now):
                    if answer is not None:
                        answer.feed(event)
                    if traced is not None:
                        traced.saw(event)

    if not await pump(upstream, chunk, outcome, step):
        return response, outcome  # the app went away: nobody to tell
    if answer is not None and outcome.complete and not outcome.stream_error:
        request[ANSWER] = Seen(stream=answer)
    await end_stream(
        response, outcome, redactor.close(), client, extra_headers,
        f"{client.name} via {translation.provider}", cache_tap,
        "text/event-stream" if array is None else "application/json",
        None if array is None else lambda rest: array.feed(rest) + array.close(),
    )  # fmt: skip
    return response, outcome
