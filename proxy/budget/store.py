"""The standalone ledger file: a small JSON document, replaced atomically.

A write goes to a temporary file in the same directory, is fsynced, then renamed
over the old file (and the directory fsynced), so a crash leaves either the old
or the new document, never half of one. A file that exists but cannot be read
as a ledger is *corrupt*: the caller must treat the budget as fully spent until a
person fixes or removes it -- reading it as zero would reopen the whole cap.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class CorruptLedger(ValueError):
    """The ledger file exists but is not a ledger; the message says what to do."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"budget ledger {path} is unreadable ({problem}); every budget counts as fully "
            "spent until it is fixed or removed (removing it forgets this period's spend)"
        )
        self.path = path


def load(path: Path) -> dict[str, Any] | None:
    """The document in `path`, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptLedger(path, str(error)) from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CorruptLedger(path, f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise CorruptLedger(path, "not a JSON object")
    return document


def save(path: Path, document: dict[str, Any]) -> None:
    """Replace `path` with `document` atomically and durably."""
    data = json.dumps(document, indent=1, sort_keys=True).encode()
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
