"""The `--help` commands bench/README.md prints, run as printed: they answer, and offer
what the README says they do. (The measuring commands take minutes; `bench.before` and
`bench.mock` have their own tests.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")


def _run(command: str) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_bench_help_offers_what_the_readme_says() -> None:
    line = next(line for line in README.splitlines() if "-m bench --help" in line)
    command, _, says = line.partition("#")  # "run lengths, rounds, --no-profile, --out"
    for promised in ("rounds", "--no-profile", "--out"):
        assert promised in says, promised
    usage = _run(command.strip())
    for flag in ("--seconds", "--rounds", "--no-profile", "--out"):
        assert flag in usage, flag


def test_the_fleet_bench_help_offers_sizes_and_cadences() -> None:
    assert re.search(r"`python -m bench\.fleet`, `--help` for sizes and cadences", README)
    usage = _run(".venv/bin/python -m bench.fleet --help")
    for flag in ("--sidecars", "--stats-interval", "--budget-interval"):
        assert flag in usage, flag
