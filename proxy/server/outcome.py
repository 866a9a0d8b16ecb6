"""What the relay learned while copying an answer: its own module because the budget
settles by it and the relay writes it, and neither should import the other (the
budget importing `relay` closed an import circle through quality and the runtime)."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.dialects import Usage


@dataclass(slots=True)
class Outcome:
    """What the relay learned while copying an answer."""

    status: int
    usage: Usage = field(default_factory=Usage)
    first_byte_at: float | None = None
    stream_error: str | None = None
    #: The whole answer arrived (a body read in full, or a stream's terminal event).
    complete: bool = False
