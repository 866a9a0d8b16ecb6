"""Talking to a real provider: open the upstream call, then relay its answer.

Two steps on purpose. `open_upstream` ends when the provider's status and headers
are in and nothing has been sent to the client yet -- the point up to which a
failure can still be retried or routed elsewhere. `relay` then copies the answer
to the client: bodies as bytes, streams chunk by chunk as they arrive (never
buffered), reading usage on the way and ending a cut stream with the dialect's
error event instead of a clean-looking truncated 200.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.config import Provider
from proxy.dialects import Dialect, ErrorKind, Usage
from proxy.dialects.azure import azure_auth
from proxy.dialects.base import StreamFilter, loads_or_none
from proxy.quality import Accumulator, extractable
from proxy.redact import Redactor
from proxy.server import tracing
from proxy.server.cache import CACHE_TAP, StreamTap
from proxy.server.outcome import Outcome
from proxy.server.quality import ANSWER, Seen
from proxy.server.replay import RECORD_TAP
from proxy.sse import Event, SSEParser
from proxy.translate import PROVIDER_DIALECTS, Upstream

log = logging.getLogger("llm_rollout.relay")

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip
#: App headers never sent upstream: the app's own credentials (the sidecar sets the
#: provider key) and encodings (usage is read from the body, so ask for identity).
_DROP_REQUEST = _HOP_BY_HOP | {"authorization", "x-api-key", "x-goog-api-key", "accept-encoding"}
_DROP_RESPONSE = _HOP_BY_HOP | {"content-encoding", "set-cookie", "server", "date"}


#: `Outcome.stream_error` when the provider itself ended the stream with an error event.
PROVIDER_ERROR = "provider-error"

#: The sidecar's own request id, in every answer and span. It has its own header so
#: a provider's `x-request-id` reaches the app unchanged and only once (the OpenAI SDK
#: reads that one header as `_request_id`, for the provider's support).
REQUEST_ID = "x-llm-request-id"


def cut_short(stream_error: str, headers: Mapping[str, str]) -> str:
    """The message of the error event that ends a stream the provider did not finish:
    which provider, which request, and that the partial answer should not be used."""
    return (
        f"provider '{headers.get('x-llm-backend', '?')}' stream {stream_error} before "
        f"completion (request {headers.get(REQUEST_ID, '?')}); the answer so far is "
        "incomplete: retry the request"
    )


class UpstreamFailure(Exception):
    """The provider could not be reached or did not answer in time; nothing was relayed."""

    def __init__(self, kind: ErrorKind, message: str, *, outcome: str = "unreachable") -> None:
        super().__init__(message)
        self.kind = kind
        #: Short label for metrics: unreachable (never sent), timeout, disconnected, cut
        #: (sent: the provider may have run and billed it), no-key.
        self.outcome = outcome

    @property
    def may_have_run(self) -> bool:
        """Whether the provider may have processed (and billed) the request."""
        return self.outcome in ("timeout", "disconnected", "cut")


#: What takes a provider's final answer: `relay` (to the client) or `consume` (to nobody).
Deliver = Callable[
    [
        web.Request,
        aiohttp.ClientResponse,
        Dialect,
        Mapping[str, str],
        StreamFilter | None,
        Redactor | None,
    ],
    Awaitable[tuple[web.StreamResponse, Outcome]],
]


def upstream_headers(app_headers: Mapping[str, str], auth: Mapping[str, str]) -> dict[str, str]:
    headers = {k: v for k, v in app_headers.items() if k.lower() not in _DROP_REQUEST}
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-llm-")}
    headers["Accept-Encoding"] = "identity"
    headers.update(auth)
    return headers


def client_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in upstream.items() if k.lower() not in _DROP_RESPONSE}


def upstream_url(provider: Provider, dialect: Dialect, request: web.Request) -> URL:
    """The provider's URL for this request: its base URL and the request's raw path and
    query, checked (`Dialect.upstream_target`) and passed on without re-encoding."""
    target = dialect.upstream_target(request.rel_url.raw_path, request.rel_url.raw_query_string)
    return URL(provider.base_url.rstrip("/") + target, encoded=True)


async def open_upstream(
    session: aiohttp.ClientSession,
    request: web.Request,
    dialect: Dialect,
    provider: Provider,
    key: str,
    body: bytes,
    target: Upstream | None = None,
) -> aiohttp.ClientResponse:
    """Send the request; `target` (a translated request) replaces the app's path and
    adds the provider dialect's own headers, else the app's path is passed on."""
    timeouts = provider.timeouts
    timeout = aiohttp.ClientTimeout(
        total=timeouts.total_ms / 1000,
        sock_connect=timeouts.connect_ms / 1000,
        sock_read=timeouts.first_byte_ms / 1000,
    )
    if target is None:
        url = upstream_url(provider, dialect, request)
        headers = upstream_headers(request.headers, dialect.auth_headers(key))
    else:
        url = URL(provider.base_url.rstrip("/") + target.path, encoded=True)
        azure = provider.azure_settings
        auth = (
            azure_auth(key, azure)
            if azure is not None
            else PROVIDER_DIALECTS[provider.dialect_type].auth_headers(key)
        )
        headers = upstream_headers(request.headers, auth | target.headers)
    tracing.propagate(request, headers)
    try:
        return await session.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except aiohttp.ConnectionTimeoutError:
        raise UpstreamFailure(
            ErrorKind.TIMEOUT,
            f"provider '{provider.name}' did not accept a connection within "
            f"connectMs {timeouts.connect_ms}",
            outcome="unreachable",
        ) from None
    except TimeoutError:
        raise UpstreamFailure(
            ErrorKind.TIMEOUT,
            f"provider '{provider.name}' did not answer in time (its timeouts: "
            f"firstByteMs {timeouts.first_byte_ms}, totalMs {timeouts.total_ms})",
            outcome="timeout",
        ) from None
    except aiohttp.ClientConnectorError as error:
        raise UpstreamFailure(
            ErrorKind.UPSTREAM, f"provider '{provider.name}' is unreachable: {error}"
        ) from None
    except aiohttp.ClientError as error:
        raise UpstreamFailure(
            ErrorKind.UPSTREAM,
            f"provider '{provider.name}' dropped the connection before answering: {error}",
            outcome="disconnected",
        ) from None


async def relay(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    dialect: Dialect,
    extra_headers: Mapping[str, str],
    stream_filter: StreamFilter | None = None,
    redactor: Redactor | None = None,
) -> tuple[web.StreamResponse, Outcome]:
    """Copy the provider's answer to the app; `stream_filter` rewrites a stream on the way
    (it takes out what the sidecar asked for on the app's behalf, see `Dialect.upstream_body`);
    usage is read from the stream as the provider sent it. `redactor` masks the key the
    provider was sent wherever the answer echoes it: headers, body, stream, cassette."""
    redactor = redactor or Redactor(())
    upstream_headers = {k: redactor.text(v) for k, v in upstream.headers.items()}
    headers = CIMultiDict(client_headers(upstream_headers))
    for name, value in extra_headers.items():
        if name == "x-should-retry":
            headers[name] = value  # the sidecar retried: its word replaces the provider's
        else:
            headers.add(name, value)
    outcome = Outcome(upstream.status)
    loop = asyncio.get_running_loop()
    if upstream.content_type != "text/event-stream":
        try:
            body = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            upstream.release()
            raise UpstreamFailure(
                ErrorKind.UPSTREAM, f"answer cut short: {error}", outcome="cut"
            ) from None
        outcome.first_byte_at = loop.time()
        outcome.complete = True
        if upstream.status == 200:
            payload = loads_or_none(body)
            outcome.usage.merge(dialect.usage_from_json(payload) or Usage())
            tracing.note_answer(request, payload)
            if extractable(dialect.name):
                request[ANSWER] = Seen(body=body)
        if redactor:
            body = redactor.whole(body)
        if (tap := request.get(RECORD_TAP)) is not None:
            tap.whole(upstream.status, upstream_headers, body)
        return web.Response(status=upstream.status, body=body, headers=headers), outcome

    chunk = await first_chunk(upstream)
    response = web.StreamResponse(status=upstream.status, headers=headers)
    await response.prepare(request)
    parser = SSEParser()
    # The answer's text and tool calls, kept (bounded) for the quality score.
    answer = (
        Accumulator(dialect.name) if upstream.status == 200 and extractable(dialect.name) else None
    )
    if (tap := request.get(RECORD_TAP)) is not None:
        tap.begin(upstream.status, upstream_headers)
    cache_tap = request.get(CACHE_TAP)
    traced = tracing.stream_trace(request)

    async def step(chunk: bytes) -> None:
        sent = chunk if stream_filter is None else stream_filter.feed(chunk)
        if redactor:
            sent = redactor.feed(sent)
        if sent:
            await response.write(sent)
            if tap is not None:
                tap.chunk(sent)
            if cache_tap is not None:
                cache_tap.chunks.append(sent)
        observe(parser.feed(chunk), dialect, outcome, answer, traced)

    if not await pump(upstream, chunk, outcome, step):
        return response, outcome  # the app went away: nobody to tell
    if answer is not None and outcome.complete and not outcome.stream_error:
        request[ANSWER] = Seen(stream=answer)
    rest = stream_filter.close() if stream_filter is not None else b""
    if redactor:
        rest = redactor.feed(rest) + redactor.close()
    if tap is not None and rest:
        tap.chunk(rest)
    await end_stream(
        response, outcome, rest, dialect, extra_headers, dialect.name, cache_tap,
        upstream.headers.get("Content-Type", "text/event-stream"),
    )  # fmt: skip
    return response, outcome


async def end_stream(
    response: web.StreamResponse, outcome: Outcome, rest: bytes, client: Dialect,
    extra_headers: Mapping[str, str], where: str, cache_tap: StreamTap | None,
    content_type: str, frame: Callable[[bytes], bytes] | None = None,
) -> None:  # fmt: skip
    """A relayed stream's last bytes, as both relays end one: what the filters still held
    (`rest`); then, if the provider's stream broke (a provider's own error event was
    relayed as it came), the `client` dialect's error event naming the provider and the
    request id, so the app's SDK raises instead of taking a cut answer as whole; all of
    it through `frame` (a Gemini JSON array's close). The cache keeps what the app
    received, and only a whole answer."""
    try:
        if outcome.stream_error and outcome.stream_error != PROVIDER_ERROR:
            message = cut_short(outcome.stream_error, extra_headers)
            log.warning("%s: %s", where, message)
            rest += client.stream_error(ErrorKind.UPSTREAM, message)
        if frame is not None:
            rest = frame(rest)
        if cache_tap is not None:
            cache_tap.chunks.append(rest)
            cache_tap.complete = outcome.complete and not outcome.stream_error
            cache_tap.content_type = content_type
        if rest:
            await response.write(rest)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the app went away while the stream ended: nobody to tell


async def pump(
    upstream: aiohttp.ClientResponse,
    chunk: bytes,
    outcome: Outcome,
    step: Callable[[bytes], Awaitable[None]],
) -> bool:
    """Hand each chunk of a provider's stream to `step` as it arrives, from `chunk` (its
    first) to the end, and note on `outcome` how it ended: whole, or `stalled` (no byte
    within the read timeout), `cut` (the connection broke) or `truncated` (closed before
    the dialect's terminal event). False: the app went away, and there is nobody to tell.
    `relay` and `relay_translated` differ only in their `step`."""
    loop = asyncio.get_running_loop()
    try:
        while chunk:
            if outcome.first_byte_at is None:
                outcome.first_byte_at = loop.time()
            await step(chunk)
            chunk = await upstream.content.readany()
        if not outcome.complete and outcome.status == 200:
            outcome.stream_error = "truncated"
    except TimeoutError:
        outcome.stream_error = "stalled"
    except aiohttp.ClientError:
        outcome.stream_error = "cut"
    except ConnectionResetError:
        return False
    finally:
        upstream.release()
    return True


def observe(
    events: Iterable[Event],
    dialect: Dialect,
    outcome: Outcome,
    answer: Accumulator | None = None,
    traced: tracing.RequestTrace | None = None,
) -> None:
    """Note what a stream's events say: its end, a provider error event, usage; and keep
    the answer's text and tool calls in `answer` (bounded) for the quality score, its
    model and finish reasons for the request's span (`traced`, when tracing is on)."""
    for event in events:
        if traced is not None:
            traced.saw(event)
        if dialect.is_error_event(event):
            outcome.stream_error = PROVIDER_ERROR  # relayed as is: the SDK raises
            outcome.complete = True
        outcome.complete = outcome.complete or dialect.is_terminal(event)
        usage = dialect.usage_from_event(event)
        if usage is not None:
            outcome.usage.merge(usage)
        if answer is not None:
            answer.feed(event)


async def consume(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    dialect: Dialect,
    extra_headers: Mapping[str, str],
    stream_filter: StreamFilter | None = None,
    redactor: Redactor | None = None,
) -> tuple[web.StreamResponse, Outcome]:
    """Read a whole answer that goes to nobody (a shadow copy's), noting what `relay` notes.

    Same signature as `relay`, so the attempt chain runs unchanged; the answer comes
    back as an unsent `web.Response` holding every byte (a stream's events joined, as
    the provider sent them: `stream_filter` and `redactor` are for what an app would
    see, and no app sees this), for the scorer. Nothing is recorded into cassettes.
    """
    outcome = Outcome(upstream.status)
    loop = asyncio.get_running_loop()
    parts: list[bytes] = []
    parser = SSEParser() if upstream.content_type == "text/event-stream" else None
    try:
        async for chunk in upstream.content.iter_any():
            if outcome.first_byte_at is None:
                outcome.first_byte_at = loop.time()
            parts.append(chunk)
            if parser is not None:
                observe(parser.feed(chunk), dialect, outcome)
    except TimeoutError:
        outcome.stream_error = "stalled"
    except aiohttp.ClientError:
        outcome.stream_error = "cut"
    finally:
        upstream.release()
    body = b"".join(parts)
    if parser is None and outcome.stream_error is None:
        outcome.complete = True
        if upstream.status == 200:
            outcome.usage.merge(dialect.usage_from_body(body) or Usage())
    elif not outcome.complete and outcome.stream_error is None and upstream.status == 200:
        outcome.stream_error = "truncated"
    return web.Response(status=upstream.status, body=body, headers=extra_headers), outcome


async def first_chunk(upstream: aiohttp.ClientResponse) -> bytes:
    """A stream's first bytes, read before the client is sent anything.

    A stream that dies before its first byte has relayed nothing, so it is still a
    failure the attempt chain can retry or route elsewhere, not a broken answer.
    """
    try:
        chunk = await upstream.content.readany()
    except TimeoutError:
        upstream.release()
        raise UpstreamFailure(
            ErrorKind.TIMEOUT, "stream sent nothing within firstByteMs", outcome="timeout"
        ) from None
    except aiohttp.ClientError as error:
        upstream.release()
        raise UpstreamFailure(
            ErrorKind.UPSTREAM, f"stream cut before its first byte: {error}", outcome="cut"
        ) from None
    if not chunk:
        upstream.release()
        raise UpstreamFailure(
            ErrorKind.UPSTREAM, "stream closed before its first byte", outcome="cut"
        )
    return chunk
