"""The wire formats the sidecar speaks, one module each, all pure.

`ROUTES` is the single table the server builds its routes from: adding a dialect
is a module here and a line in that table.
"""

from proxy.dialects.anthropic_messages import AnthropicMessages
from proxy.dialects.base import BadRequest, Dialect, ErrorKind, ParsedRequest, Usage
from proxy.dialects.gemini import Gemini
from proxy.dialects.openai_chat import OpenAIChat
from proxy.dialects.openai_embeddings import OpenAIEmbeddings
from proxy.dialects.openai_responses import OpenAIResponses

#: (aiohttp route pattern on the data port, dialect serving it). Gemini's model and
#: method are path variables; the handler reads them from ``match_info``. google-genai
#: calls ``/v1`` by default, REST examples ``/v1beta``: both are Gemini's and pass as is.
ROUTES: tuple[tuple[str, Dialect], ...] = (
    ("/v1/chat/completions", OpenAIChat()),
    ("/v1/responses", OpenAIResponses()),
    ("/v1/embeddings", OpenAIEmbeddings()),
    ("/v1/messages", AnthropicMessages()),
    (
        "/{version:v1|v1beta|v1alpha}/models/{model:[^/:]+}"
        ":{method:generateContent|streamGenerateContent}",
        Gemini(),
    ),
)


def guess_dialect(path: str, headers: dict[str, str]) -> Dialect:
    """The dialect of a request to a path we do not serve, so even a 404 is in its shape."""
    for route, dialect in ROUTES:
        if path == route:
            return dialect
    lowered = {k.lower() for k in headers}
    by_type = {d.provider_type: d for _, d in reversed(ROUTES)}
    if ("x-goog-api-key" in lowered or path.startswith("/v1beta")) and "gemini" in by_type:
        return by_type["gemini"]
    if "anthropic-version" in lowered or "x-api-key" in lowered:
        return by_type["anthropic"]
    return by_type["openai"]


__all__ = [
    "ROUTES",
    "BadRequest",
    "Dialect",
    "ErrorKind",
    "ParsedRequest",
    "Usage",
    "guess_dialect",
]
