"""What the figures were measured on, and how busy the (shared) machine was meanwhile."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.procs import cpu_seconds


def describe() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "CPUs (nproc)": str(os.cpu_count()),
        "CPU model": model,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "wrk": wrk.split(" [")[0].strip() or "unknown",
        "load average at start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU-seconds of the whole machine since boot, from /proc/stat.

    Interrupt time is left out: loopback networking runs largely in softirq context,
    which is charged to no process, so it would count the bench's own work as others'.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, steal = fields[0], fields[1], fields[2], fields[7]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system) / tick, steal / tick


def _own_seconds(live: tuple[int, ...]) -> float:
    """CPU-seconds of this process, its reaped children (wrk, sidecars, py-spy) and the
    still-running children `live`."""
    t = os.times()
    running = sum(cpu_seconds(pid) for pid in live)
    return t.user + t.system + t.children_user + t.children_system + running


@dataclass
class OtherLoad:
    """CPU used by processes other than the bench's own while it ran (the machine is shared).

    `live` are children that run throughout the measured span (their time is read from
    /proc); every other child must have been waited for when the figures are read.
    """

    live: tuple[int, ...] = ()
    started: float = field(default_factory=time.monotonic)
    busy: tuple[float, float] = field(default_factory=_cpu_seconds)
    own: float = 0.0

    def __post_init__(self) -> None:
        self.own = _own_seconds(self.live)

    def others(self) -> tuple[float, float, float]:
        """(CPU-seconds used by others, CPU-seconds stolen, CPU-seconds of capacity)."""
        wall = time.monotonic() - self.started
        busy, stolen = _cpu_seconds()
        others = max(0.0, busy - self.busy[0] - (_own_seconds(self.live) - self.own))
        return others, stolen - self.busy[1], wall * (os.cpu_count() or 1)

    def share(self) -> float:
        """Percent of the machine's CPU capacity used by others so far."""
        others, _, capacity = self.others()
        return 100 * others / capacity

    def figures(self) -> dict[str, str]:
        others, stolen, capacity = self.others()
        return {
            "CPU used by other processes during the run (user + system)": (
                f"{others:.1f} CPU-s of {capacity:.0f} ({100 * others / capacity:.0f}%)"
            ),
            "CPU stolen by the hypervisor during the run": f"{stolen:.1f} CPU-s",
        }
