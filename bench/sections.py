"""Sections of docs/benchmarks.md that separate commands own.

`make bench` writes the document; `make bench-peers` (which takes minutes and installs
other gateways) owns its "Peers" section. Each keeps the other's section as it was,
between HTML comment markers.
"""

from __future__ import annotations

import re


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def section(document: str, name: str) -> str | None:
    """The marked section `name` of `document`, markers included, or None."""
    begin, end = _markers(name)
    found = re.search(re.escape(begin) + r".*?" + re.escape(end), document, re.S)
    return found.group(0) if found else None


def replace_section(document: str, name: str, text: str) -> str:
    """`document` with section `name` set to `text` (appended when absent)."""
    begin, end = _markers(name)
    block = f"{begin}\n{text.rstrip()}\n{end}"
    old = section(document, name)
    if old is not None:
        return document.replace(old, block)
    return document.rstrip() + "\n\n" + block + "\n"
