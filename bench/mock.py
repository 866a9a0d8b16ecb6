"""The mock's CPU per answer, per dialect, and this tree's against another commit's.

The mock writes every dialect but OpenAI chat (the hub) through `proxy.translate`,
so an Anthropic or Gemini answer costs the hub answer plus its translation: the
OpenAI chat figure from the same run is the baseline each is set beside.

``python -m bench.mock --before REF`` measures this tree and commit REF (exported
with ``git archive`` to a temporary directory) in alternating rounds, each in its
own process, prints the medians side by side (the before/after of a change to the
mock's request path) and writes them to the "mock" section of docs/benchmarks.md,
which `make bench` keeps. This file is also run as a script inside those processes
(`--measure`), so it imports nothing from `bench`: the tree under test is whatever
``proxy`` the process finds first on its path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The requests measured: one marketing prompt, as each SDK sends it.
PROMPT = "Write a tweet announcing our new oat-milk latte"
REQUESTS: dict[str, dict[str, object]] = {
    "openai.chat": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    "anthropic.messages": {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": PROMPT}],
    },
    "gemini.generate_content": {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
}
KINDS = ("json", "stream")
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def mock_cpu_us(repeats: int = 1000) -> dict[str, float]:
    """Microseconds of CPU (this process) for one mock answer, per "dialect kind"."""
    # Imported here: the tree under test is whichever `proxy` this process finds.
    from proxy.config.model import MockSpec
    from proxy.dialects import ROUTES
    from proxy.mock import answer

    dialects = {dialect.name: dialect for _, dialect in ROUTES}
    spec = MockSpec(seed=7)
    figures = {}
    for name, request in REQUESTS.items():
        dialect = dialects[name]
        for kind in KINDS:
            stream = kind == "stream"
            body = dict(request)
            if stream and name != "gemini.generate_content":
                body["stream"] = True
            raw = json.dumps(body).encode()
            model = "gemini-2.5-flash" if name == "gemini.generate_content" else None
            parsed = dialect.parse(raw, path_model=model, query_stream=stream)
            answer(name, parsed, spec)  # warm: imports, caches
            started = time.process_time()
            for _ in range(repeats):
                made = answer(name, parsed, spec)
            figures[f"{name} {kind}"] = 1e6 * (time.process_time() - started) / repeats
            assert made.status == 200, made
            assert made.events if stream else made.body, made
    return figures


def _measure_in(tree: Path, repeats: int) -> dict[str, float]:
    """One round in a fresh process whose ``proxy`` is `tree`'s."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    script = [sys.executable, str(Path(__file__).resolve()), "--measure", str(repeats)]
    done = subprocess.run(script, env=env, cwd=tree, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare(before: str, rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median over `rounds` of each figure, for commit `before` and this tree, alternating."""
    with tempfile.TemporaryDirectory() as temp:
        old = Path(temp)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", before, "proxy"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for _ in range(rounds):
            runs["before"].append(_measure_in(old, repeats))
            runs["after"].append(_measure_in(ROOT, repeats))
    return {
        side: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for side, results in runs.items()
    }


def table(figures: dict[str, dict[str, float]], before: str) -> str:
    """Before and after per figure, and each dialect beside OpenAI chat (the hub) after."""
    lines = [
        f"| mock answer, CPU per request | before ({before}) | after | after / before "
        "| after / OpenAI chat |",
        "|---|---|---|---|---|",
    ]
    for key, old in figures["before"].items():
        new = figures["after"][key]
        hub = figures["after"]["openai.chat " + key.rpartition(" ")[2]]
        lines.append(f"| {key} | {old:.0f} us | {new:.0f} us | {new / old:.2f} | {new / hub:.2f} |")
    return "\n".join(lines)


def section(figures: dict[str, dict[str, float]], before: str, rounds: int) -> str:
    """The "mock" section of docs/benchmarks.md."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", before],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return "\n".join([
        "## The mock's CPU per answer, before and after (`python -m bench.mock`)",
        "",
        f"One answer to \"{PROMPT}\" (seed 7, `tokenCount: estimate`) built by "
        f"`proxy.mock.answer`, as CPU microseconds in one process; median of {rounds} "
        f"alternating rounds, *before* the tree at {before} ({commit}), *after* this one, "
        "each round a fresh process. Since the mock writes only OpenAI chat and has "
        "`proxy.translate` write the other dialects, an Anthropic or Gemini answer is "
        "the OpenAI chat answer plus its translation; the last column sets it beside "
        "OpenAI chat's answer to the same prompt, which also differs in reading and "
        "counting each dialect's request (a Gemini stream has fewer chunks, a few words "
        "each, as Gemini sends them). Rounds of the same figure vary by about 5 % on "
        "this shared machine.",
        "",
        table(figures, before),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mock", description=__doc__)
    parser.add_argument("--before", default="main", help="commit to compare with (%(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians)")
    parser.add_argument("--repeats", type=int, default=500, help="answers per figure per round")
    parser.add_argument("--out", type=Path, default=DOC, help="Markdown report (%(default)s)")
    parser.add_argument("--measure", type=int, metavar="REPEATS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(mock_cpu_us(args.measure)))
        return 0
    from bench.sections import replace_section  # not in --measure: no `bench` there

    figures = compare(args.before, args.rounds, args.repeats)
    print(table(figures, args.before))
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    text = section(figures, args.before, args.rounds)
    args.out.write_text(replace_section(old, "mock", text), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
