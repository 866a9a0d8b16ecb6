"""Run the chaos scenarios and write their figures into `docs/resilience.md`.

    .venv/bin/python -m tests.chaos_report

The table between the `chaos-figures` markers is replaced; everything else in
the document is left alone. The figures are whatever this run measured.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from pathlib import Path

from tests.chaos import BREAKER, RETRY, SCENARIOS, Result

DOC = Path(__file__).resolve().parent.parent / "docs" / "resilience.md"
BEGIN, END = "<!-- chaos-figures:begin -->", "<!-- chaos-figures:end -->"


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "–"


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | sent | answered | lost | ok | dialect errors | by backend "
        "| calls per provider | breaker (open / half-open / closed) | seconds |",
        "|---|---:|---:|---:|---:|---|---|---|---|---:|",
    ]
    for result in results:
        r = result.report
        breakers = "; ".join(
            f"{name} {t['open']}/{t['half-open']}/{t['closed']}"
            for name, t in r.transitions.items()
        )
        lines.append(
            f"| {r.scenario} | {r.sent} | {r.answered} | {len(r.lost)} | {r.succeeded} "
            f"| {_counts(r.errors)} | {_counts(r.by_backend)} | {_counts(r.attempts)} "
            f"| {breakers} | {r.seconds} |"
        )
    return "\n".join(lines)


async def run() -> list[Result]:
    return [await scenario() for scenario in SCENARIOS.values()]


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    results = asyncio.run(run())
    block = "\n".join([
        BEGIN,
        f"Measured by `python -m tests.chaos_report` (Python {platform.python_version()}, "
        f"{platform.machine()}); policy: circuitBreaker `{BREAKER}`, retry `{RETRY}`, "
        "provider timeouts connect 500 ms / first byte 300 ms / total 5 s.",
        "",
        table(results),
        END,
    ])  # fmt: skip
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + block + tail)
    print(block)
    return 0 if all(not r.report.lost for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
