"""Answer quality: a deterministic, rule-based 0-5 score of every answer of either arm.

Pure (no aiohttp): `expectations` reads what a request asked, `from_body` /
`Accumulator` read what came back in any dialect, `score` applies the rubric
documented in `proxy.quality.score`. The server records results
(`proxy.server.quality`). The LLM judge's pure half is `proxy.quality.judge`.
"""

from proxy.quality.extract import Accumulator, extractable, from_body
from proxy.quality.finished import MAX_TEXT_CHARS, Finished, SeenCall
from proxy.quality.score import (
    REASONS,
    SHORT_ANSWER_TOKENS,
    Expectations,
    Result,
    expectations,
    score,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "REASONS",
    "SHORT_ANSWER_TOKENS",
    "Accumulator",
    "Expectations",
    "Finished",
    "Result",
    "SeenCall",
    "expectations",
    "extractable",
    "from_body",
    "score",
]
