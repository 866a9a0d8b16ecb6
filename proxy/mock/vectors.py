"""Deterministic text embeddings for the mock, by feature hashing.

An app's similarity search must behave sensibly on the mock: equal texts get
equal vectors, texts sharing words point the same way, unrelated texts are close
to orthogonal. Hashing words and character trigrams into signed buckets (the
"hashing trick") gives exactly that with no model: the cosine of two vectors
grows with the features the texts share, and unshared features land on random
buckets with random signs, so they average out to about 0.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"\w+")
#: Whole words weigh more than their trigrams: the same word is stronger evidence
#: of similarity than the same spelling fragment.
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.35


def _features(text: str) -> Iterable[tuple[str, float]]:
    for word in _WORD.findall(text.lower()):
        yield "w:" + word, _WORD_WEIGHT
        padded = f" {word} "
        for i in range(len(padded) - 2):
            yield "c:" + padded[i : i + 3], _TRIGRAM_WEIGHT


def _token_features(tokens: Sequence[int]) -> Iterable[tuple[str, float]]:
    for token in tokens:
        yield f"t:{token}", _WORD_WEIGHT


def embed(item: str | Sequence[int], dimensions: int) -> list[float]:
    """A unit vector of `dimensions` floats for a text or a token array."""
    vector = [0.0] * dimensions
    features = _features(item) if isinstance(item, str) else _token_features(item)
    for feature, weight in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        bits = int.from_bytes(digest, "little")
        vector[(bits >> 1) % dimensions] += weight if bits & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:  # no word characters at all: still a valid, fixed unit vector
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity (for tests and demos; vectors from `embed` are unit length)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
