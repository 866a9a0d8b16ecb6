"""`kubectl-llmrollout` (as `kubectl llmrollout`): show a rollout and steer it.

Commands patch the resource's ``llm-rollout.io/command`` annotation with
``"<id> <verb> [weight]"``; the operator runs each id once and records the
outcome in ``status.lastCommand``, which this command waits for and prints.
Credentials and namespace come from the kubeconfig (``--kubeconfig``, then
``KUBECONFIG``, then ``~/.kube/config``), or the in-cluster ServiceAccount.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import aiohttp

from rollout_operator.kube import KubeClient, KubeError, connection, rollout_path
from rollout_operator.reconcile import COMMAND_ANNOTATION

VERBS = ["promote", "abort", "retry", "pause", "resume", "set-weight"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kubectl llmrollout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)"
    )
    commands = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    get = commands.add_parser("get", help="steps, weight, analysis per metric and arm, budget")
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="keep printing on every change")
    promote = commands.add_parser("promote", help="leave the current pause (or a hand pause)")
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true", help="skip all steps: 100%% real now")
    for verb, text in [("abort", "0%% real now; `retry` starts again"),
                       ("retry", "restart an aborted or degraded rollout from step 0"),
                       ("pause", "hold the rollout at its current weight"),
                       ("resume", "continue after `pause` or `set-weight`")]:  # fmt: skip
        commands.add_parser(verb, help=text).add_argument("name")
    weight = commands.add_parser("set-weight", help="set the real weight by hand (and pause)")
    weight.add_argument("name")
    weight.add_argument("weight", type=int, help="0-100")
    return parser.parse_args(argv)


def render(obj: dict[str, Any]) -> str:
    """A person's view of one rollout."""
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    lines = [
        f"Name:      {meta['namespace']}/{meta['name']}",
        f"Phase:     {status.get('phase', '(not started)')}  {status.get('message', '')}",
        f"Weight:    {status.get('realWeight', 0)}% real",
        f"Shadow:    {status.get('shadowPercent', 0)}% of mock-routed requests copied to the "
        "real arm",
    ]
    steps = (spec.get("strategy") or {}).get("steps") or []
    current = status.get("currentStepIndex", 0)
    for index, step in enumerate(steps):
        marker = "=>" if index == current else "  "
        if "setWeight" in step:
            text = f"setWeight {step['setWeight']}"
        elif "setShadow" in step:
            text = f"setShadow {step['setShadow']}"
        else:
            text = f"pause {(step.get('pause') or {}).get('duration') or 'until promoted'}"
        lines.append(f"  {marker} {index}: {text}")
    if not steps:
        lines.append("  (no strategy: static split at traffic.realWeight)")
    analysis = status.get("analysis")
    if analysis:
        lines.append(
            f"Analysis:  {analysis['verdict']} - {analysis['detail']} "
            f"(requests real {analysis['requests']['real']}, "
            f"mock {analysis['requests']['mock']})"
        )
        for metric in analysis["metrics"]:
            bounds = " ".join(
                f"{k} {metric[k]:g}"
                for k in ("max", "min", "minVsMock")
                if metric.get(k) is not None
            )
            real = "n/a" if metric["real"] is None else f"{metric['real']:g}"
            mock = "n/a" if metric["mock"] is None else f"{metric['mock']:g}"
            verdict = {True: "ok", False: "FAIL", None: "-"}[metric["ok"]]
            lines.append(
                f"  {metric['name']:<24} real {real:<10} mock {mock:<10} {bounds}  {verdict}"
            )
        lines += _quality(analysis.get("quality") or {})
    budget = status.get("budget") or {}
    if budget:
        cap = budget.get("capUSD") or "no cap"
        lines.append(
            f"Budget:    spent ${budget.get('spentUSD')} reserved "
            f"${budget.get('reservedUSD')} of {cap} since {budget.get('periodStart')}"
        )
    sidecars = status.get("sidecars") or {}
    lines.append(
        f"Sidecars:  {sidecars.get('connected', 0)} connected, "
        f"config version {sidecars.get('configVersion', 0)}"
    )
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _quality(arms: dict[str, dict[str, Any]]) -> list[str]:
    """Answer quality of each arm over the last analysis window, gated or not."""
    if not arms:
        return []
    lines = ["Quality:   (last window)  score  brand  rejected  judge  scored  shadow copies"]
    for arm in ("real", "mock"):
        q = arms.get(arm) or {}
        lines.append(
            f"  {arm:<22} {_figure(q.get('quality-score')):>6} "
            f"{_figure(q.get('brand-compliance')):>6} {_figure(q.get('rejection-rate')):>9} "
            f"{_figure(q.get('judge-score')):>6} {q.get('scored', 0):>7} "
            f"{q.get('shadowRequests', 0):>14}"
        )
    return lines


async def _command(client: KubeClient, path: str, verb: str, argument: str) -> int:
    command_id = str(time.time_ns())
    value = f"{command_id} {verb} {argument}".strip()
    await client.request(
        "PATCH",
        path,
        {"metadata": {"annotations": {COMMAND_ANNOTATION: value}}},
        "application/merge-patch+json",
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = (await client.request("GET", path)).get("status") or {}
        last = status.get("lastCommand") or {}
        if last.get("id") == command_id:
            result = str(last.get("result", ""))
            print(
                f"{verb}: {result}; phase {status.get('phase')}, {status.get('realWeight')}% real"
            )
            return 0 if result == "done" else 1
        await asyncio.sleep(0.2)
    print(
        f"{verb}: sent, but the operator has not acted on it within 15 s; is it running?",
        file=sys.stderr,
    )
    return 1


async def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    info = connection()
    namespace = args.namespace or info.default_namespace or "default"
    path = rollout_path(namespace, args.name)
    client = KubeClient(info)
    try:
        if args.verb == "get":
            shown = ""
            while True:
                text = render(await client.request("GET", path))
                if text != shown:
                    print(text + ("\n" if args.watch else ""), flush=True)
                    shown = text
                if not args.watch:
                    return 0
                await asyncio.sleep(1)
        verb = "promote-full" if args.verb == "promote" and args.full else args.verb
        argument = str(args.weight) if args.verb == "set-weight" else ""
        return await _command(client, path, verb, argument)
    except KubeError as error:
        print(f"kubectl llmrollout: {namespace}/{args.name}: {error}", file=sys.stderr)
        return 1
    except (OSError, aiohttp.ClientError) as error:
        print(f"kubectl llmrollout: {namespace}/{args.name}: cannot reach the API server "
              f"{info.server}: {error}", file=sys.stderr)  # fmt: skip
        return 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
