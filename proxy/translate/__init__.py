"""Cross-dialect translation: any provider answers any SDK's request.

Design: a hub format, not pairwise translators. Every request, answer and stream
chunk passes through one intermediate form -- OpenAI Chat Completions as plain dicts
(`proxy.translate.hub`) -- so each dialect needs one module that maps *to* the hub
and *from* it (3 modules for 3 dialects, and one more per dialect added), where
pairwise translators would need n*(n-1) (6 today, 12 with a fourth). OpenAI chat is
the hub because it is the richest common shape (tools, structured output, images,
usage with cache and reasoning tokens) and because it is what LiteLLM and Envoy AI
Gateway normalise to, so its semantics are the best known; an OpenAI client served
by Anthropic thus pays one hop each way, an Anthropic client served by Gemini two.
What the hub cannot hold rides along under hub-only ``_`` keys (top_k, cache-write
tokens); what a target cannot express is refused with a 400 naming the field
(`Untranslatable`), never dropped.

Same-dialect traffic never comes here: it stays bytes-through. Everything here is
pure (no I/O): the server hands over parsed JSON and SSE events and gets bytes back.
Streams are translated event by event as they arrive (`StreamTranslator`), never
buffered whole; only a Gemini client's function-call arguments wait for their call's
end, because Gemini sends arguments as one object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.config import ProviderType
from proxy.dialects import Dialect, ErrorKind, ParsedRequest
from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.dialects.base import dumps
from proxy.dialects.gemini import Gemini
from proxy.dialects.openai_chat import OpenAIChat
from proxy.sse import Event
from proxy.translate import anthropic, gemini, openai, responses
from proxy.translate.hub import Untranslatable, error_of

#: The dialects a translation serves, by name, with the provider type speaking each.
TRANSLATABLE: dict[str, ProviderType] = {
    "openai.chat": "openai",
    "openai.responses": "openai",
    "anthropic.messages": "anthropic",
    "gemini.generate_content": "gemini",
}
#: The provider-side dialect of each provider type (its usage, errors, stream end).
PROVIDER_DIALECTS: dict[ProviderType, Dialect] = {
    "openai": OpenAIChat(),
    "anthropic": AnthropicMessages(),
    "gemini": Gemini(),
}


class _ToHub(Protocol):
    def feed(self, event: Event) -> list[dict[str, Any]]: ...


class FromHub(Protocol):
    """Hub stream chunks in, a client dialect's stream bytes out; `close` ends it."""

    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def close(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Upstream:
    """What to send the provider: path below its base URL, extra headers, body."""

    path: str
    headers: dict[str, str]
    body: bytes
    #: Conversation position of the answer (Gemini function-call ids derive from it).
    turn: int


class Translation:
    """One request's translation from the client's dialect to a provider's and back."""

    def __init__(
        self, client: Dialect, provider: ProviderType, parsed: ParsedRequest, name: str = ""
    ) -> None:
        self.client = client
        self.parsed = parsed
        self.provider = provider
        self.provider_dialect = PROVIDER_DIALECTS[provider]
        #: How errors name the provider: its configured `name` (which one of the rollout's
        #: providers to look at) and its type.
        self.label = f"'{name}' ({provider})" if name else f"({provider})"

    def request(self, model: str) -> Upstream:
        """The provider's request for `model`; raises `Untranslatable` (a `BadRequest`)
        naming a field the provider cannot express."""
        parsed = self.parsed
        hub = self._to_hub(parsed)
        if self.provider == "anthropic":
            body = anthropic.request_from_hub(hub, model)
            return Upstream(
                "/v1/messages",
                {"anthropic-version": anthropic.API_VERSION},
                dumps(body),
                len(body["messages"]),
            )
        if self.provider == "gemini":
            body = gemini.request_from_hub(hub)
            method = "streamGenerateContent?alt=sse" if parsed.stream else "generateContent"
            return Upstream(
                f"/v1beta/models/{model}:{method}", {}, dumps(body), len(body["contents"])
            )
        body = openai.request_from_hub(hub, model)
        return Upstream("/chat/completions", {}, dumps(body), len(body["messages"]))

    def _to_hub(self, parsed: ParsedRequest) -> dict[str, Any]:
        client = self.client.name
        if client == "anthropic.messages":
            return anthropic.request_to_hub(parsed.payload)
        if client == "gemini.generate_content":
            return gemini.request_to_hub(parsed.payload, parsed.model, parsed.stream)
        if client == "openai.responses":
            return responses.request_to_hub(parsed.payload)
        return dict(parsed.payload)

    def answer(self, status: int, body: bytes, turn: int) -> tuple[int, bytes]:
        """The provider's whole answer (or error) as the client's: status and body."""
        if status != 200:
            kind, message = error_of(status, body)
            return self.error(kind, f"provider {self.label} answered {status}: {message}")
        try:
            payload = json.loads(body)
        except ValueError:
            return self.error(ErrorKind.UPSTREAM, f"provider {self.label} answered non-JSON")
        if self.provider == "anthropic":
            hub = anthropic.answer_to_hub(payload)
        elif self.provider == "gemini":
            hub = gemini.answer_to_hub(payload, turn)
        else:
            hub = payload
        return 200, dumps(client_answer(self.client.name, hub, self.parsed.payload))

    def error(self, kind: ErrorKind, message: str) -> tuple[int, bytes]:
        """An error in the client's dialect; 529 (Anthropic's overloaded) is 503 to others."""
        if kind is ErrorKind.OVERLOADED and self.client.provider_type != "anthropic":
            kind = ErrorKind.UNAVAILABLE
        return kind.status, self.client.error_body(kind, message)

    def stream(self, turn: int) -> StreamTranslator:
        to_hub: _ToHub = (
            anthropic.StreamToHub()
            if self.provider == "anthropic"
            else gemini.StreamToHub(turn)
            if self.provider == "gemini"
            else openai.StreamToHub()
        )
        return StreamTranslator(self, to_hub, client_stream(self.client.name, self.parsed.payload))


def client_answer(client: str, hub: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A hub answer as client dialect `client` answers `payload`: the one way every answer
    in another dialect is made, a provider's translated or the mock's (which writes
    only the hub's), so a fix here fixes both."""
    if client == "anthropic.messages":
        return anthropic.answer_from_hub(hub)
    if client == "gemini.generate_content":
        return gemini.answer_from_hub(hub)
    if client == "openai.responses":
        return responses.answer_from_hub(hub, payload)
    return openai.answer_from_hub(hub)


def client_stream(client: str, payload: dict[str, Any]) -> FromHub:
    """Hub chunks -> client dialect `client`'s stream for `payload` (see `client_answer`)."""
    if client == "anthropic.messages":
        return anthropic.StreamFromHub()
    if client == "gemini.generate_content":
        return gemini.StreamFromHub()
    if client == "openai.responses":
        return responses.StreamFromHub(payload)
    options = payload.get("stream_options")
    return openai.StreamFromHub(isinstance(options, dict) and options.get("include_usage") is True)


class StreamTranslator:
    """A provider's stream events in, the client's stream bytes out, event by event.

    `feed` returns what to send the client now; `close` ends the client's stream
    properly once the provider's terminal event was seen. A provider's error event
    becomes the client dialect's (its SDK raises on it) and ends the translation.
    """

    def __init__(self, translation: Translation, to_hub: _ToHub, from_hub: FromHub) -> None:
        self.translation = translation
        self.to_hub, self.from_hub = to_hub, from_hub
        self.done = False

    def feed(self, event: Event) -> bytes:
        if self.done:
            return b""
        provider = self.translation.provider_dialect
        if provider.is_error_event(event):
            self.done = True
            kind = (
                anthropic.error_kind(event)
                if provider.provider_type == "anthropic"
                else error_of(500, event.data.encode())[0]
            )
            message = error_of(500, event.data.encode())[1]
            if (
                kind is ErrorKind.OVERLOADED
                and self.translation.client.provider_type != "anthropic"
            ):
                kind = ErrorKind.UNAVAILABLE
            return self.translation.client.stream_error(
                kind, f"provider {self.translation.label} failed mid-stream: {message}"
            )
        out = b"".join(self.from_hub.feed(chunk) for chunk in self.to_hub.feed(event))
        if provider.is_terminal(event):
            self.done = True
            out += self.from_hub.close()
        return out


__all__ = [
    "PROVIDER_DIALECTS",
    "TRANSLATABLE",
    "FromHub",
    "StreamTranslator",
    "Translation",
    "Untranslatable",
    "Upstream",
    "client_answer",
    "client_stream",
]
