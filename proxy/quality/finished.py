"""A finished answer as the scorer sees it, whatever dialect carried it.

The relay and the mock's writer build one from a whole body or from the stream's
events (`proxy.quality.extract`); the scorer reads only this. Text is kept up to
`MAX_TEXT_CHARS` so a runaway stream cannot grow the sidecar's memory: beyond it
the rest is dropped, `clipped` says so, and the kept part is what is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: At most this many characters of answer text (and of each tool call's arguments) are kept.
MAX_TEXT_CHARS = 64 * 1024

#: Why the answer ended, in provider-neutral words: "stop" (a natural end), "length"
#: (the token limit), "refusal" (a refusal or a safety block), "tool" (a tool call), "" (unknown).
Finish = Literal["stop", "length", "refusal", "tool", ""]


@dataclass(slots=True)
class SeenCall:
    """One tool call of the answer: the tool's name and its arguments as JSON text."""

    name: str
    arguments: str = ""


@dataclass(slots=True)
class Finished:
    text: str = ""
    calls: list[SeenCall] = field(default_factory=list)
    finish: Finish = ""
    #: The provider said it refused (OpenAI `refusal`, a safety block) whatever the text.
    refused: bool = False
    #: More text arrived than `MAX_TEXT_CHARS`: only the first part was kept and scored.
    clipped: bool = False

    def add_text(self, piece: str) -> None:
        """Append streamed text within the bound."""
        room = MAX_TEXT_CHARS - len(self.text)
        if len(piece) > room:
            self.clipped = True
            piece = piece[: max(0, room)]
        self.text += piece

    def add_arguments(self, call: SeenCall, piece: str) -> None:
        room = MAX_TEXT_CHARS - len(call.arguments)
        if len(piece) > room:
            self.clipped = True
            piece = piece[: max(0, room)]
        call.arguments += piece
