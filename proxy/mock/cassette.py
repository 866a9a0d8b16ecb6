"""Recorded provider answers (VCR-style YAML cassettes): matching and playback.

An app's integration tests can then run on real answers, byte for byte and at the
recorded pace, with no key and no network. The format is plain YAML so a cassette
can be read, trimmed and reviewed in a pull request:

```yaml
version: 1
interactions:
  - request:
      method: POST
      path: /v1/chat/completions
      model: gpt-4o-mini
      body: {model: gpt-4o-mini, messages: [...]}    # the JSON the app sent
    response:
      status: 200
      headers: {content-type: text/event-stream, ...} # keys and cookies never stored
      chunks:                                          # a stream: bytes as relayed,
        - {delay: 0.412, data: "data: {...}\\n\\n"}    # seconds after the previous
      # or `body: "..."` for a whole answer (`body_b64` / `data_b64` when not UTF-8)
```

Pure: parsing, matching and building the `Answer` happen here; reading and
writing the file is the server's (`proxy.server.replay`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from proxy.dialects import Usage
from proxy.mock.draft import Answer

#: Response headers never written to a cassette: credentials, cookies, and framing
#: that is recomputed when the answer is played back.
STRIPPED_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "set-cookie",
     "openai-organization", "openai-project", "anthropic-organization-id",
     "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
     "date", "server", "x-llm-backend", "x-llm-route-reason", "x-llm-cost-usd"}
)  # fmt: skip
MATCH_RULES = ("method", "path", "model", "body", "bodySubset")


class CassetteError(ValueError):
    """A cassette that cannot be read; the message names the file's problem."""


@dataclass(frozen=True, slots=True)
class Chunk:
    delay: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Interaction:
    method: str
    path: str
    model: str
    body: Any
    status: int
    headers: dict[str, str]
    response_body: bytes = b""
    chunks: tuple[Chunk, ...] = ()

    @property
    def stream(self) -> bool:
        return bool(self.chunks)


@dataclass(frozen=True, slots=True)
class Request:
    """The facts of an incoming request that matching looks at."""

    method: str
    path: str
    model: str
    body: Any


@dataclass
class Cassette:
    interactions: list[Interaction] = field(default_factory=list)

    def match(
        self, request: Request, rules: Sequence[str], occurrence: int = 0
    ) -> Interaction | None:
        """The recorded interaction for `request`; the n-th repeat of a request gets the
        n-th matching recording (the last one again once they run out)."""
        found = [i for i in self.interactions if _matches(i, request, rules)]
        if not found:
            return None
        return found[min(occurrence, len(found) - 1)]


def _matches(interaction: Interaction, request: Request, rules: Sequence[str]) -> bool:
    for rule in rules:
        if rule == "method" and interaction.method.upper() != request.method.upper():
            return False
        if rule == "path" and interaction.path != request.path:
            return False
        if rule == "model" and interaction.model != request.model:
            return False
        if rule == "body" and interaction.body != request.body:
            return False
        if rule == "bodySubset" and not _subset(interaction.body, request.body):
            return False
    return True


def _subset(recorded: Any, incoming: Any) -> bool:
    """Whether every field of `recorded` is in `incoming` with the same value (recursively)."""
    if isinstance(recorded, dict):
        return isinstance(incoming, dict) and all(
            key in incoming and _subset(value, incoming[key]) for key, value in recorded.items()
        )
    if isinstance(recorded, list):
        return (
            isinstance(incoming, list)
            and len(recorded) == len(incoming)
            and all(_subset(a, b) for a, b in zip(recorded, incoming, strict=True))
        )
    return bool(recorded == incoming)


def playback(interaction: Interaction, timing: bool, usage: Usage) -> Answer:
    """The recorded answer as the mock's `Answer`: same status, headers and bytes."""
    headers = {k: v for k, v in interaction.headers.items() if k.lower() != "content-type"}
    # The media type alone: the server sets the charset (aiohttp refuses it in content_type).
    content_type = interaction.headers.get("content-type", "application/json").split(";")[0]
    if not interaction.chunks:
        return Answer(
            interaction.status, content_type, body=interaction.response_body,
            usage=usage, headers=headers,
        )  # fmt: skip
    return Answer(
        interaction.status,
        content_type,
        events=[c.data for c in interaction.chunks],
        delays=[c.delay if timing else 0.0 for c in interaction.chunks],
        usage=usage,
        headers=headers,
    )


# -- YAML ------------------------------------------------------------------------------------


def _bytes_field(node: dict[str, Any], name: str) -> bytes:
    if f"{name}_b64" in node:
        return base64.b64decode(node[f"{name}_b64"])
    value = node.get(name, "")
    return value.encode() if isinstance(value, str) else b""


def _text_field(name: str, data: bytes) -> dict[str, str]:
    try:
        return {name: data.decode()}
    except UnicodeDecodeError:  # a chunk that splits a UTF-8 character
        return {f"{name}_b64": base64.b64encode(data).decode()}


def loads(text: str, source: str = "cassette") -> Cassette:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise CassetteError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("interactions", []), list):
        raise CassetteError(f"{source}: expected a mapping with an 'interactions' list")
    cassette = Cassette()
    for index, item in enumerate(document.get("interactions") or []):
        try:
            request, response = item["request"], item["response"]
            cassette.interactions.append(
                Interaction(
                    method=str(request.get("method", "POST")),
                    path=str(request["path"]),
                    model=str(request.get("model", "")),
                    body=request.get("body"),
                    status=int(response["status"]),
                    headers={
                        str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()
                    },
                    response_body=_bytes_field(response, "body"),
                    chunks=tuple(
                        Chunk(float(c.get("delay", 0.0)), _bytes_field(c, "data"))
                        for c in response.get("chunks") or []
                    ),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CassetteError(
                f"{source}: interactions[{index}] is malformed ({error!r}); each needs "
                "request.path and response.status"
            ) from None
    return cassette


def dumps(cassette: Cassette) -> str:
    interactions = []
    for i in cassette.interactions:
        response: dict[str, Any] = {"status": i.status, "headers": dict(i.headers)}
        if i.chunks:
            response["chunks"] = [
                {"delay": round(c.delay, 4)} | _text_field("data", c.data) for c in i.chunks
            ]
        else:
            response |= _text_field("body", i.response_body)
        interactions.append(
            {
                "request": {"method": i.method, "path": i.path, "model": i.model, "body": i.body},
                "response": response,
            }
        )
    return yaml.safe_dump(
        {"version": 1, "interactions": interactions},
        sort_keys=False, allow_unicode=True, width=100,
    )  # fmt: skip


def request_facts(method: str, path: str, model: str, raw_body: bytes) -> Request:
    try:
        body = json.loads(raw_body) if raw_body else None
    except ValueError:
        body = raw_body.decode("utf-8", "replace")
    return Request(method, path, model, body)


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Response headers fit to store: no credentials, no cookies, no framing."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in STRIPPED_HEADERS}
