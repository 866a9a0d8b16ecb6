"""What the figures were measured on, and how busy the (shared) machine was meanwhile."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


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


def _own_seconds() -> float:
    """CPU-seconds of this process and its reaped children (wrk, upstream, sidecars, py-spy)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class OtherLoad:
    """CPU used by processes other than the bench's own while it ran (the machine is shared).

    Read `figures()` only once every child has been waited for, so their time is counted
    as the bench's own.
    """

    started: float = field(default_factory=time.monotonic)
    busy: tuple[float, float] = field(default_factory=_cpu_seconds)
    own: float = field(default_factory=_own_seconds)

    def figures(self) -> dict[str, str]:
        wall = time.monotonic() - self.started
        busy, stolen = _cpu_seconds()
        others = max(0.0, busy - self.busy[0] - (_own_seconds() - self.own))
        capacity = wall * (os.cpu_count() or 1)
        return {
            "CPU used by other processes during the run (user + system)": (
                f"{others:.1f} CPU-s of {capacity:.0f} ({100 * others / capacity:.0f}%)"
            ),
            "CPU stolen by the hypervisor during the run": f"{stolen - self.busy[1]:.1f} CPU-s",
        }
