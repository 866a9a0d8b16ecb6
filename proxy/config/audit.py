"""The security audit trail: one JSON line per security-relevant fact.

Shared by the sidecar and the operator (so it lives with the contract they share):
a separate stream from the logs, to stdout by default or appended to a file
(``--audit-log PATH`` or ``LLM_ROLLOUT_AUDIT_LOG``), which a log pipeline can route
to its own retention. An event never holds a key or a prompt: keys appear only as
`fingerprint` (provider, last 4 characters, hash prefix), which tells two keys
apart and matches a provider console's "...abcd" without revealing the key.

Events (``event`` field): ``key.loaded``, ``key.removed``, ``key.rotated``, ``key.problem``,
``key.rejected``, ``config.applied``, ``config.rejected``, ``killswitch.on`` / ``killswitch.off``,
``budget.exhausted``; operator: ``control.auth_failed`` (with the caller's ServiceAccount),
``webhook.injected`` (pod, rollout, the user the API server names), ``rollout.command.requested``
(a `kubectl llmrollout` command and who sent it, from the admission webhook) and
``rollout.command`` (the operator acting on it: same command id, its result).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

AUDIT_ENV = "LLM_ROLLOUT_AUDIT_LOG"


def fingerprint(provider: str, key: str) -> str:
    """``openai-primary:…abcd:sha256=1a2b3c4d``: enough to tell keys apart, never the key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{provider}:…{key[-4:]}:sha256={digest}"


class AuditLog:
    """Writes audit events as JSON lines; `counted` is called once per event (a metric)."""

    def __init__(
        self, stream: TextIO | None, component: str, counted: Callable[[str], None] | None = None
    ) -> None:
        """`stream` None: events are counted but written nowhere (library use, tests)."""
        self.stream = stream
        self.component = component
        self.counted = counted or (lambda event: None)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, target: str | None, component: str) -> AuditLog:
        """`target`: a file path, ``-`` or None for stdout (then `AUDIT_ENV`, if set)."""
        target = target or os.environ.get(AUDIT_ENV) or "-"
        stream = sys.stdout if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
        return cls(stream, component)

    def event(self, event: str, **facts: Any) -> None:
        record = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "audit": True,
            "component": self.component,
            "event": event,
            **facts,
        }
        if self.stream is not None:
            line = json.dumps(record, default=str, ensure_ascii=False)
            with self._lock:
                self.stream.write(line + "\n")
                self.stream.flush()
        self.counted(event)
