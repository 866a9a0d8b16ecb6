"""`python -m bench.mock` (bench/README.md) runs and writes its section, kept by `make bench`.

Short runs (one round, a few answers): the figures themselves are measured, not
asserted; this checks the command works and writes what docs/benchmarks.md shows.
"""

from __future__ import annotations

from pathlib import Path

from bench import mock
from bench.sections import section


def test_bench_mock_compares_two_trees_and_writes_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept as it was\n", encoding="utf-8")
    assert (
        mock.main(["--before", "HEAD", "--rounds", "1", "--repeats", "3", "--out", str(doc)]) == 0
    )
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nkept as it was\n")
    written = section(text, "mock")
    assert written is not None
    for dialect in mock.REQUESTS:
        for kind in mock.KINDS:
            row = next(
                line for line in written.splitlines() if line.startswith(f"| {dialect} {kind} |")
            )
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            assert cells[1].endswith(" us")
            assert cells[2].endswith(" us")
            assert float(cells[3]) > 0
            assert float(cells[4]) > 0
