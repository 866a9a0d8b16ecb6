"""`python -m bench.before` (bench/README.md) runs two trees side by side and writes its
section, kept by `make bench`.

A short run (one round of one second): the figures are measured, not asserted; this
checks the command works, really runs the older tree, and writes what the docs show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import before
from bench.sections import section


def test_bench_before_compares_the_passthrough_of_two_trees(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept as it was\n", encoding="utf-8")
    argv = ["--before", "HEAD~1", "--rounds", "1", "--seconds", "1", "--out", str(doc)]
    assert before.main(argv) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nkept as it was\n")
    written = section(text, "before")
    assert written is not None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD~1"], capture_output=True,
                            text=True, check=True, cwd=before.ROOT).stdout.strip()  # fmt: skip
    assert f"runs the `proxy` package of HEAD~1 ({commit})" in written
    for figure in before.FIGURES:
        row = next(line for line in written.splitlines() if line.startswith(f"| {figure} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[3]) > 0, row
    rps = next(line for line in written.splitlines() if line.startswith("| req/s"))
    assert all(float(c.replace(",", "")) > 10 for c in rps.strip("|").split("|")[1:3]), rps
