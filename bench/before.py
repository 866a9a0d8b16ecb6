"""`python -m bench.before --before REF`: the passthrough at commit REF and in this tree, side
by side, in one run: the before/after every change on the request path owes.

Two sidecars with the bench's all-real config (OpenAI chat, bytes-through, to the fake
upstream): one runs this tree (the installed `llm-rollout-proxy`), the other commit REF's
`proxy` package (exported with ``git archive``, run as ``python -m proxy`` with that tree
first on the path; same interpreter and packages). In alternating rounds, each sidecar
gets the same loads `make bench` holds to its targets: one client with sidecar, wrk and
upstream on one CPU (added latency p50 and p99 over the upstream alone, measured in the
same round), and eight clients placed by the scheduler (requests per second, the
sidecar's CPU per request, and per stream of the same request). Medians over rounds; the
load average is read before each round, since the machine is shared. Writes the "before"
section of docs/benchmarks.md, which `make bench` keeps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import STREAM_BODY, ensure_wrk, run_wrk
from bench.procs import FREE, ONE_CPU, Sidecar, Upstream, cpu_seconds, write_config
from bench.sections import replace_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SIDES = ("before", "after")
FIGURES = (
    "added p50 ms",
    "added p99 ms",
    "req/s, 8 clients",
    "CPU us per request",
    "CPU us per stream",
)


@dataclass
class Rounds:
    """Each side's figures, one value per round."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    load_averages: list[float] = field(default_factory=list)

    def add(self, side: str, figure: str, value: float) -> None:
        self.values.setdefault((side, figure), []).append(value)

    def median(self, side: str, figure: str) -> float:
        return statistics.median(self.values[side, figure])


@contextmanager
def exported(ref: str) -> Iterator[Path]:
    """Commit `ref`'s `proxy` package in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as temp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "proxy"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", temp], input=archive.stdout, check=True)
        yield Path(temp)


def compare(ref: str, rounds: int, seconds: int) -> Rounds:
    wrk = ensure_wrk()
    upstream = Upstream.start()
    measured = Rounds()
    try:
        with tempfile.TemporaryDirectory() as temp, exported(ref) as old:
            config = write_config(Path(temp), upstream.port)
            sidecars = {"before": Sidecar.start(config, tree=old), "after": Sidecar.start(config)}
            try:
                for sidecar in sidecars.values():  # warm-up: imports, connections, caches
                    FREE.apply(sidecar, upstream)
                    run_wrk(wrk, sidecar.port, connections=8, seconds=1)
                for _ in range(rounds):
                    measured.load_averages.append(os.getloadavg()[0])
                    for side, sidecar in sidecars.items():
                        ONE_CPU.apply(sidecar, upstream)
                        direct = run_wrk(wrk, upstream.port, connections=1, seconds=seconds)
                        through = run_wrk(wrk, sidecar.port, connections=1, seconds=seconds)
                        measured.add(side, FIGURES[0], through.p50_ms - direct.p50_ms)
                        measured.add(side, FIGURES[1], through.p99_ms - direct.p99_ms)
                        FREE.apply(sidecar, upstream)
                        before = cpu_seconds(sidecar.proc.pid)
                        loaded = run_wrk(wrk, sidecar.port, connections=8, seconds=seconds)
                        used = cpu_seconds(sidecar.proc.pid) - before
                        measured.add(side, FIGURES[2], loaded.rps)
                        measured.add(side, FIGURES[3], 1e6 * used / loaded.requests)
                        before = cpu_seconds(sidecar.proc.pid)
                        streamed = run_wrk(wrk, sidecar.port, connections=8, seconds=seconds,
                                           body=STREAM_BODY)  # fmt: skip
                        used = cpu_seconds(sidecar.proc.pid) - before
                        measured.add(side, FIGURES[4], 1e6 * used / streamed.requests)
            finally:
                for sidecar in sidecars.values():
                    sidecar.stop()
    finally:
        upstream.stop()
    return measured


def table(measured: Rounds, ref: str) -> str:
    lines = [f"| passthrough | before ({ref}) | after | after / before |", "|---|---:|---:|---:|"]
    for figure in FIGURES:
        old, new = measured.median("before", figure), measured.median("after", figure)
        digits = 3 if figure.endswith("ms") else 0
        lines.append(f"| {figure} | {old:,.{digits}f} | {new:,.{digits}f} | {new / old:.2f} |")
    return "\n".join(lines)


def section(measured: Rounds, ref: str, rounds: int, seconds: int) -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    loads = ", ".join(f"{load:.1f}" for load in measured.load_averages)
    return "\n".join([
        "## The passthrough, before and after (`python -m bench.before`)",
        "",
        f"The same bytes-through OpenAI chat load on two sidecars side by side: *before* "
        f"runs the `proxy` package of {ref} ({commit}), *after* this tree. Medians of "
        f"{rounds} alternating rounds of {seconds} s per load; added latency is one client "
        "on one CPU minus the upstream alone in the same round; throughput and CPU per "
        "request (and per stream: the same request streamed) are eight clients. Load "
        f"average before each round: {loads}. Rounds of "
        "the same figure vary by 5-10 % on this shared machine: a ratio within that is no "
        "change.",
        "",
        table(measured, ref),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.before", description=__doc__)
    parser.add_argument("--before", default="main", help="commit to compare with (%(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians)")
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--out", type=Path, default=DOC, help="Markdown report (%(default)s)")
    args = parser.parse_args(argv)
    measured = compare(args.before, args.rounds, args.seconds)
    print(table(measured, args.before))
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    text = section(measured, args.before, args.rounds, args.seconds)
    args.out.write_text(replace_section(old, "before", text), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
