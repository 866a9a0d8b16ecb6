"""Watching the config file and key files for changes.

Polling one `stat` a second is enough here and works where inotify does not: a
Kubernetes ConfigMap or Secret mount changes by swapping a symlink, which `stat`
(following links) sees as a new inode.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from proxy.server.runtime import Runtime

log = logging.getLogger("llm_rollout.config")

Signature = tuple[int, int, int] | None


def signature(path: Path) -> Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


async def watch_config(runtime: Runtime, path: Path, interval: float = 1.0) -> None:
    seen = signature(path)
    while True:
        await asyncio.sleep(interval)
        runtime.keys.refresh()
        current = signature(path)
        if current == seen:
            continue
        seen = current
        if current is None:
            log.warning("config file %s disappeared; keeping version %d", path,
                        runtime.snapshot.version)  # fmt: skip
            continue
        runtime.reload_file(path)
