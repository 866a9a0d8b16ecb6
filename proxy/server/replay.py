"""Record and replay (`spec.mock.replay`): the I/O half of `proxy.mock.cassette`.

Record mode: the relay copies every byte of a real answer into the request's `Tap`
(status, safe headers, body or chunks with their timing); when the request is
done, the interaction is appended to the cassette file, written whole to a
temporary file and renamed, so a reader never sees half a cassette. Replay mode:
the mock answers from the cassette when a recording matches, else as configured
(`onMiss`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from proxy.config.model import MockReplay
from proxy.dialects import Dialect, ErrorKind, ParsedRequest, Usage
from proxy.mock.cassette import (
    Cassette,
    CassetteError,
    Chunk,
    Interaction,
    dumps,
    loads,
    playback,
    request_facts,
    safe_headers,
)
from proxy.mock.draft import Answer
from proxy.sse import SSEParser

log = logging.getLogger("llm_rollout.replay")


@dataclass
class Tap:
    """What the relay saw of one real answer, for the record mode."""

    started: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[Chunk] = field(default_factory=list)
    _last: float = 0.0

    def begin(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.headers, self._last = status, safe_headers(headers), self.started

    def chunk(self, data: bytes) -> None:
        now = asyncio.get_running_loop().time()
        self.chunks.append(Chunk(now - self._last, data))
        self._last = now

    def whole(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.begin(status, headers)
        self.body = body


RECORD_TAP = web.RequestKey("record_tap", Tap)


class CassetteStore:
    """The cassette files in use, read again when they change on disk."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[float, Cassette]] = {}
        self._lock = asyncio.Lock()

    def get(self, path: str) -> Cassette:
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            return Cassette()
        cached = self._loaded.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, loads(Path(path).read_text(encoding="utf-8"), path))
            self._loaded[path] = cached
        return cached[1]

    async def append(self, path: str, interaction: Interaction) -> None:
        async with self._lock:
            cassette = self.get(path)
            cassette.interactions.append(interaction)
            await asyncio.to_thread(_write_atomically, path, dumps(cassette))
            self._loaded[path] = (os.stat(path).st_mtime, cassette)


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


CASSETTES = web.AppKey("cassettes", CassetteStore)


def start_recording(request: web.Request, replay: MockReplay | None) -> None:
    """In record mode, give the relay a tap for this request's real answer."""
    if replay is not None and replay.mode == "record":
        request[RECORD_TAP] = Tap(asyncio.get_running_loop().time())


async def finish_recording(
    request: web.Request, replay: MockReplay | None, parsed: ParsedRequest
) -> None:
    """Append what the tap caught (a real answer, never the mock's) to the cassette."""
    tap = request.get(RECORD_TAP)
    if replay is None or tap is None or not tap.status:
        return
    facts = request_facts(request.method, request.path, parsed.model, parsed.raw)
    interaction = Interaction(
        facts.method, facts.path, facts.model, facts.body, tap.status, tap.headers,
        response_body=tap.body, chunks=tuple(tap.chunks),
    )  # fmt: skip
    try:
        await request.app[CASSETTES].append(replay.cassette, interaction)
    except (OSError, CassetteError) as error:
        log.warning("record mode: could not write cassette %s: %s", replay.cassette, error)


def replayed(
    request: web.Request,
    replay: MockReplay | None,
    dialect: Dialect,
    parsed: ParsedRequest,
    occurrence: int,
) -> Answer | None:
    """The recorded answer to this request, an error on a miss with `onMiss: error`, or
    None for the generated mock to answer."""
    if replay is None or replay.mode != "replay":
        return None
    try:
        cassette = request.app[CASSETTES].get(replay.cassette)
    except (OSError, CassetteError) as error:
        return _error(dialect, ErrorKind.INTERNAL, f"llm-rollout replay: {error}")
    facts = request_facts(request.method, request.path, parsed.model, parsed.raw)
    found = cassette.match(facts, replay.match, occurrence)
    if found is None:
        if replay.on_miss == "mock":
            return None
        return _error(
            dialect,
            ErrorKind.NOT_FOUND,
            f"llm-rollout replay: no recording in {replay.cassette} matches this "
            f"{facts.method} {facts.path} (model {facts.model}) by {', '.join(replay.match)}; "
            "record it (mode: record) or set onMiss: mock",
        )
    return playback(found, replay.timing == "recorded", _usage(dialect, found))


def _usage(dialect: Dialect, interaction: Interaction) -> Usage:
    if not interaction.chunks:
        return dialect.usage_from_body(interaction.response_body) or Usage()
    usage, parser = Usage(), SSEParser()
    for chunk in interaction.chunks:
        for event in parser.feed(chunk.data):
            found = dialect.usage_from_event(event)
            if found is not None:
                usage.merge(found)
    return usage


def _error(dialect: Dialect, kind: ErrorKind, message: str) -> Answer:
    return Answer(kind.status, "application/json", body=dialect.error_body(kind, message))
