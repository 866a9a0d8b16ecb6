"""The Grafana dashboard of the chart, generated from the chart's one list of metric names.

Written as code rather than hand-edited JSON so that a renamed metric changes the
alerts (templated from the same `files/metrics.yaml`) and the dashboard together.

    python -m tools.dashboard --write   # updates charts/llm-rollout/files/dashboard.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rollout_operator import generated

CHART = Path(__file__).resolve().parent.parent / "charts" / "llm-rollout"
METRICS = CHART / "files" / "metrics.yaml"
COMMITTED = CHART / "files" / "dashboard.json"


def _panel(
    index: int, title: str, kind: str, exprs: list[tuple[str, str]], unit: str
) -> dict[str, Any]:
    width = 12
    return {
        "id": index + 1,
        "title": title,
        "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": (index % 2) * width, "y": (index // 2) * 8, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _mean(histogram: str, by: str, selector: str) -> tuple[str, str]:
    """A histogram's mean over 5 minutes per `by`, and its legend."""

    def rate(series: str) -> str:
        return f"rate({histogram}_{series}{{{selector}}}[5m])"

    return f"sum by ({by}) ({rate('sum')}) / sum by ({by}) ({rate('count')})", f"{{{{{by}}}}}"


def dashboard(names: dict[str, dict[str, str]]) -> dict[str, Any]:
    s, o = names["sidecar"], names["operator"]
    ns = 'namespace=~"$namespace"'
    panels = [
        ("Traffic split: real weight in force", "timeseries", [
            (f"max by (namespace, pod) ({s['realWeight']}{{{ns}}})", "{{namespace}}/{{pod}}"),
        ], "percent"),
        ("Requests by arm", "timeseries", [
            (f"sum by (arm) (rate({s['requests']}{{{ns}}}[5m]))", "{{arm}}"),
        ], "reqps"),
        ("Errors by arm (429 and 5xx)", "timeseries", [
            (f'sum by (arm) (rate({s["requests"]}{{{ns},status=~"429|5.."}}[5m]))'
             f" / sum by (arm) (rate({s['requests']}{{{ns}}}[5m]))", "{{arm}}"),
        ], "percentunit"),
        ("Latency p50 / p95 by backend", "timeseries", [
            (f"histogram_quantile({q}, sum by (backend, le) "
             f"(rate({s['duration']}_bucket{{{ns}}}[5m])))", f"p{int(q * 100)} {{{{backend}}}}")
            for q in (0.5, 0.95)
        ], "s"),
        ("Cost per hour by provider", "timeseries", [
            (f"sum by (provider) (rate({s['costUSD']}{{{ns}}}[1h])) * 3600", "{{provider}}"),
        ], "currencyUSD"),
        ("Budget spent of cap, per sidecar", "bargauge", [
            (f"max by (pod, budget) ({s['budgetSpentUSD']}{{{ns}}})"
             f" / max by (pod, budget) ({s['budgetCapUSD']}{{{ns}}})", "{{pod}} {{budget}}"),
        ], "percentunit"),
        ("Circuit breakers (0 closed, 1 open, 2 half-open)", "state-timeline", [
            (f"max by (provider) ({s['breakerState']}{{{ns}}})", "{{provider}}"),
        ], "none"),
        ("Config version per sidecar", "timeseries", [
            (f"max by (pod) ({s['configVersion']}{{{ns}}})", "{{pod}}"),
        ], "none"),
        ("Answer quality score by arm (0-5; real includes shadow copies)", "timeseries", [
            _mean(s["qualityScore"], "arm", ns),
        ], "none"),
        ("Answers rejected, by arm and reason", "timeseries", [
            (f"sum by (arm, reason) (rate({s['qualityRejections']}{{{ns}}}[5m]))",
             "{{arm}} {{reason}}"),
        ], "reqps"),
        ("Brand compliance by arm", "timeseries", [
            (f'sum by (arm) (rate({s["brandCompliance"]}{{{ns},result="compliant"}}[5m]))'
             f" / sum by (arm) (rate({s['brandCompliance']}{{{ns}}}[5m]))", "{{arm}}"),
        ], "percentunit"),
        ("LLM judge score by arm (1-5)", "timeseries", [
            _mean(s["judgeScore"], "arm", ns),
        ], "none"),
        ("Shadow traffic: share copied to the real arm, per rollout", "timeseries", [
            (f"max by (namespace, rollout) ({o['rolloutShadow']}{{{ns}}})",
             "{{namespace}}/{{rollout}}"),
        ], "percent"),
    ]  # fmt: skip
    return {
        "title": "llm-rollout",
        "uid": "llm-rollout",
        "schemaVersion": 39,
        "tags": ["llm-rollout"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": f"label_values({s['requests']}, namespace)",
                    "includeAll": True,
                    "multi": True,
                },
            ]
        },
        "panels": [_panel(i, *spec) for i, spec in enumerate(panels)],
    }


def render() -> str:
    names = yaml.safe_load(METRICS.read_text(encoding="utf-8"))
    return json.dumps(dashboard(names), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(
        argv,
        prog="python -m tools.dashboard",
        description=__doc__,
        committed=COMMITTED,
        render=render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
