"""Where the sidecar's time goes under load: a py-spy profile, summarised.

py-spy samples the running sidecar from outside (no code change, little
overhead with ``--nonblocking``) and writes collapsed stacks. The summary counts,
over the samples in which the process was busy (idle waits in the event loop are
not sampled), each function's *self* time (it was the leaf) and *total* time (it
was anywhere on the stack), and groups self time by library.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: Samples per second: enough for a summary, little overhead on a shared machine.
RATE = 100

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

#: Self time grouped by where the code lives (path prefixes), first match wins.
UVLOOP = "uvloop C code (event loop, sockets; leaf is asyncio.run)"
PROXY = "sidecar code (proxy/)"
PROMETHEUS = "prometheus_client"
_GROUPS = (
    (UVLOOP, ("asyncio/runners.py",)),
    (PROXY, ("proxy/",)),
    ("aiohttp server (web_*)", ("aiohttp/web_",)),
    ("aiohttp client (client*, connector)", ("aiohttp/client", "aiohttp/connector")),
    ("aiohttp shared (http_*, streams, helpers, ...)", ("aiohttp/",)),
    (PROMETHEUS, ("prometheus_client/",)),
    ("multidict / yarl", ("multidict/", "yarl/")),
    ("asyncio", ("asyncio/",)),
    ("json", ("json/",)),
)


def pyspy() -> str | None:
    script = Path(sys.executable).parent / "py-spy"
    return str(script) if script.exists() else shutil.which("py-spy")


@dataclass(frozen=True)
class Profile:
    samples: int
    self_top: list[tuple[str, float]]
    total_top: list[tuple[str, float]]
    groups: list[tuple[str, float]]


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` for `seconds`; None when py-spy is not installed."""
    tool = pyspy()
    if tool is None:
        return None
    cmd = [tool, "record", "-p", str(pid), "-d", str(seconds), "-r", str(RATE),
           "--nonblocking", "--format", "raw", "-o", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _matches(path: str, needles: tuple[str, ...]) -> bool:
    """A needle starts one of `path`'s components (py-spy prints some paths relative)."""
    return any(path.startswith(n) or f"/{n}" in path for n in needles)


def _bootstrap(path: str) -> bool:
    """Frames under which everything runs (the script, `main`, `asyncio.run`): no news."""
    return path.endswith(("asyncio/runners.py", "proxy/cli.py", "llm-rollout-proxy"))


def _label(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, frame
    path = match["file"]
    short = "/".join(path.split("/")[-2:])
    return f"{match['func']} ({short})", path


def summarise(raw: Path, top: int = 15) -> Profile:
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_label(f) for f in stack.split(";")]
        leaf, leaf_path = frames[-1]
        self_time[leaf] += count
        for name in {name for name, path in frames if not _bootstrap(path)}:
            total_time[name] += count
        group = next((g for g, needles in _GROUPS if any(n in leaf_path for n in needles)), "other")
        groups[group] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, 100 * c / samples) for name, c in counter.most_common(n)]

    return Profile(
        samples=samples,
        self_top=share(self_time, top),
        total_top=share(total_time, top),
        groups=share(groups, len(_GROUPS) + 1),
    )
