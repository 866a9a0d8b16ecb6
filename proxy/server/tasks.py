"""Stopping background tasks: cancel them all, then wait for each to finish.

Every background job of the sidecar (control-channel loops, judge calls, shadow
copies, the config watcher) ends the same way at shutdown; cancelling all before
awaiting any lets them unwind concurrently (a shadow copy settles its budget hold
while a judge call closes its connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has finished (its cancellation swallowed)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
