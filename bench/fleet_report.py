"""`bench.fleet`'s figures as Markdown (the measured section of docs/scaling.md) and a plot.

The plot is hand-written SVG (as `tests/soak.py` draws its own): two panels over the
fleet size, propagation p50/p99 against the 2 s target, and the operator's peak RSS
against the 300 MB target. No plotting library is installed for one chart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.fleet import Result

PROPAGATION_TARGET_MS = 2000.0
RSS_TARGET_MB = 300.0


def table(results: list[Result], cap: str) -> str:
    head = ("| sidecars | join (s) | config versions at join | propagation p50 / p99 (ms) "
            "| until all have it, worst change (ms) | operator CPU per change (CPU-s) "
            "| operator CPU, steady (% of a core) | stats pushes/s | operator CPU per push (ms) "
            "| push latency p50 / p99 (ms) | operator RSS end / peak (MB) | slices: Jain index "
            "| sidecars granted nothing | granted of the cap (USD) | failed calls "
            "| changes not seen within the timeout "
            "| abort to weight 0, p50 / p99 (ms) |")  # fmt: skip
    rows = [head, "|" + "---:|" * (head.count("|") - 1)]
    for r in results:
        rows.append(
            f"| {r.sidecars:,} | {r.join_seconds:.1f} | {r.versions_at_join} "
            f"| {r.p50 * 1000:.0f} / {r.p99 * 1000:.0f} | {max(r.to_all) * 1000:.0f} "
            f"| {max(r.change_cpu):.2f} | {r.steady_cpu_per_second * 100:.0f} "
            f"| {r.steady_pushes_per_second:.0f} | {r.push_cpu_ms:.2f} "
            f"| {r.push_p50_ms:.0f} / {r.push_p99_ms:.0f} | {r.rss_mb:.0f} / {r.hwm_mb:.0f} "
            f"| {r.jain:.2f} | {r.got_nothing} | {r.granted_total:.0f} of {cap} "
            f"| {sum(r.errors.values())} | {r.missed} "
            f"| {r.quantile(r.abort, 0.5) * 1000:.0f} / {r.quantile(r.abort, 0.99) * 1000:.0f} |"
        )
    return "\n".join(rows)


def plot(results: list[Result]) -> str:
    """Propagation p50/p99 and operator peak RSS over the fleet size (log scale), as SVG."""
    width, height, pad, gap = 300, 200, 50, 70
    sizes = [r.sidecars for r in results]
    low, high = math.log10(min(sizes)), math.log10(max(sizes))
    high = high if high > low else low + 1

    def x(size: int, left: float) -> float:
        return left + width * (math.log10(size) - low) / (high - low)

    panels = [
        ("propagation to every sidecar (ms)", PROPAGATION_TARGET_MS,
         [("p50", "#1565c0", [r.p50 * 1000 for r in results]),
          ("p99", "#c62828", [r.p99 * 1000 for r in results])]),
        ("operator RSS, peak (MB)", RSS_TARGET_MB,
         [("peak RSS", "#2e7d32", [r.hwm_mb for r in results])]),
    ]  # fmt: skip
    total = 2 * width + 3 * pad + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height + 2 * pad}" '
             'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" '
             'fill="white"/>']  # fmt: skip
    for index, (title, target, series) in enumerate(panels):
        left = pad + index * (width + pad + gap)
        top = pad
        peak = max([target, *(v for _, _, values in series for v in values)]) * 1.1

        def y(value: float, top: float = top, peak: float = peak) -> float:
            return top + height - height * value / peak

        parts += [
            f'<text x="{left}" y="{top - 12}" font-weight="bold">{title}</text>',
            f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" '
            'stroke="#ccc"/>',
            f'<line x1="{left}" y1="{y(target):.1f}" x2="{left + width}" y2="{y(target):.1f}" '
            'stroke="#e90" stroke-dasharray="4 3"/>',
            f'<text x="{left + width - 2}" y="{y(target) - 4:.1f}" text-anchor="end" fill="#e90">'
            f"target {target:g}</text>",
            f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{peak:.0f}</text>',
            f'<text x="{left - 4}" y="{top + height}" text-anchor="end">0</text>',
        ]
        for size in sizes:
            parts.append(f'<text x="{x(size, left):.1f}" y="{top + height + 14}" '
                         f'text-anchor="middle">{size:,}</text>')  # fmt: skip
        for row, (name, colour, values) in enumerate(series):
            points = " ".join(
                f"{x(s, left):.1f},{y(v):.1f}" for s, v in zip(sizes, values, strict=True)
            )
            parts += [
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>',
                *(f'<circle cx="{x(s, left):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
                  for s, v in zip(sizes, values, strict=True)),
                f'<text x="{left + 6}" y="{top + 14 + 14 * row}" fill="{colour}">{name}</text>',
            ]  # fmt: skip
        parts.append(f'<text x="{left + width / 2}" y="{top + height + 30}" '
                     'text-anchor="middle">simulated sidecars (log scale)</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
