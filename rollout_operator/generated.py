"""The command line of a generated file that is committed: print it, or `--write` it.

The CRD and the Grafana dashboard are both generated from one source of truth and
committed; a test fails when the committed file drifts from a fresh render.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def main(
    argv: list[str] | None, *, prog: str, description: str | None, committed: Path,
    render: Callable[[], str],
) -> int:  # fmt: skip
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", action="store_true", help=f"update {committed}")
    args = parser.parse_args(argv)
    if args.write:
        committed.write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render())
    return 0
