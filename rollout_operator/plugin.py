"""`kubectl-llmrollout` (as `kubectl llmrollout`): see rollouts and steer them, as kubectl does.

Flags go anywhere on the line (`-n`, `--kubeconfig`, `--context`; `-A` for lists).
Credentials come from the kubeconfig (`--kubeconfig`, then KUBECONFIG, then
~/.kube/config; exec credential plugins, OIDC and client certificates included), or the
ServiceAccount in a pod. `status` waits for a rollout's outcome, for CI/CD pipelines:
exit 0 Healthy, 1 Degraded or Aborted, 2 timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio.config import ConfigException, list_kube_config_contexts

from proxy.config import parse_duration
from rollout_operator import steer
from rollout_operator.kube import KubeClient, KubeError

NAMED = {
    "get": "steps, weight, analysis per metric and arm, budget",
    "status": "wait until Healthy (exit 0), Degraded/Aborted (exit 1) or --timeout (exit 2)",
    "promote": "leave the current pause (or a hand pause)",
    "abort": "0%% real now; `retry` starts again",
    "retry": "restart an aborted or degraded rollout from step 0",
    "pause": "hold the rollout at its current weight",
    "resume": "continue after `pause` or `set-weight`",
    "set-weight": "set the real weight by hand (and pause)",
    "cache-flush": "every sidecar stops serving the answers it cached (in memory and Redis)",
    "disable-provider": "take PROVIDER out of routing and fallback now (a provider outage)",
    "enable-provider": "put PROVIDER back after `disable-provider`",
}
SHELLS = ("bash", "zsh")
#: How `get` shows a metric's `ok`: held, broken, not measured.
_VERDICT: dict[bool | None, str] = {True: "ok", False: "FAIL", None: "-"}


def _global_flags(suppress: bool) -> argparse.ArgumentParser:
    """-n, --kubeconfig and --context, accepted before and after the command, as in kubectl.
    On the subcommands their default is SUPPRESS, so a flag given before the command stays."""
    flags = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    flags.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the kubeconfig context's)"
    )
    flags.add_argument(
        "--kubeconfig",
        default=default,
        help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)",
    )
    flags.add_argument("--context", default=default, help="kubeconfig context (default: current)")
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl llmrollout",
        description=__doc__,
        parents=[_global_flags(False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = _global_flags(True)
    commands = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list", parents=[common], help="rollouts: phase, weight, step, spend"
    )
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.add_argument("-o", "--output", choices=["name"], help="name: names only")
    for verb, text in NAMED.items():
        sub = commands.add_parser(verb, parents=[common], help=text)
        sub.add_argument("name", help="the LLMRollout")
        if verb == "get":
            sub.add_argument("-o", "--output", choices=["json", "yaml"], help="the whole object")
            sub.add_argument("-w", "--watch", action="store_true", help="print on every change")
        elif verb == "status":
            sub.add_argument(
                "--timeout",
                default="10m",
                type=parse_duration,
                help="give up after this long, e.g. 90s, 10m, 1h (default 10m)",
            )
        elif verb == "promote":
            sub.add_argument("--full", action="store_true", help="skip all steps: 100%% real now")
        elif verb == "set-weight":
            sub.add_argument("weight", type=int, choices=range(101), metavar="WEIGHT", help="0-100")
        elif verb in ("disable-provider", "enable-provider"):
            sub.add_argument("provider", help="a name from the rollout's spec.providers")
    board = commands.add_parser("dashboard", parents=[common], help="a web UI on localhost")
    board.add_argument("-A", "--all-namespaces", action="store_true")
    board.add_argument("--port", type=int, help="default 3100, or a free one if 3100 is taken")
    board.add_argument("--address", default="127.0.0.1", help="default 127.0.0.1 (this machine)")
    shell = commands.add_parser(
        "completion", help="shell completion: `source <(kubectl llmrollout completion bash)`"
    )
    shell.add_argument("shell", choices=SHELLS)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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
            verdict = _VERDICT[metric["ok"]]
            lines.append(
                f"  {metric['name']:<24} real {real:<10} mock {mock:<10} {bounds}  {verdict}"
            )
        lines += _providers(analysis.get("providers") or [])
        lines += _quality(analysis.get("quality") or {})
    for condition in status.get("conditions") or []:
        if condition.get("type") == "AnalysisSeesData" and condition.get("status") == "False":
            lines.append(f"Warning:   analysis is blind: {condition.get('message', '')}")
    budget = status.get("budget") or {}
    if budget:
        cap = budget.get("capUSD") or "no cap"
        lines.append(
            f"Budget:    spent ${budget.get('spentUSD')} reserved "
            f"${budget.get('reservedUSD')} of {cap} since {budget.get('periodStart')}"
        )
    switched = status.get("disabledProviders") or []
    off = [p.get("name", "") for p in spec.get("providers") or [] if p.get("enabled") is False]
    disabled = [f"{n} (disable-provider)" for n in switched] + [f"{n} (spec)" for n in off]
    if disabled:
        lines.append(f"Disabled:  {', '.join(disabled)}")
    sidecars = status.get("sidecars") or {}
    lines.append(
        f"Sidecars:  {sidecars.get('connected', 0)} connected, "
        f"config version {sidecars.get('configVersion', 0)}"
    )
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _providers(providers: list[dict[str, Any]]) -> list[str]:
    """The real arm provider by provider (`traffic.providers`), each judged like the arm."""
    if not providers:
        return []
    lines = ["Providers: (real arm by routed provider, last window)"]
    for provider in providers:
        head = f"  {provider['name']:<22} {provider['requests']:>6} requests"
        if not provider.get("judged"):
            lines.append(f"{head}  (fewer than minRequests: not judged)")
            continue
        figures = ", ".join(
            f"{m['name']} {_figure(m['real'])} {_VERDICT[m['ok']]}" for m in provider["metrics"]
        )
        lines.append(f"{head}  {figures}")
    return lines


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


def _age(created: str, now: datetime.datetime) -> str:
    if not created:
        return "-"
    then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render_list(items: list[dict[str, Any]], all_namespaces: bool) -> str:
    """The rollouts as a table, as `kubectl get` prints one."""
    now = datetime.datetime.now(datetime.UTC)
    head = ["NAME", "PHASE", "WEIGHT", "SHADOW", "STEP", "SPENT", "AGE"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + head]
    for obj in items:
        meta, status = obj["metadata"], obj.get("status") or {}
        steps = ((obj.get("spec") or {}).get("strategy") or {}).get("steps") or []
        step = f"{status.get('currentStepIndex', 0)}/{len(steps)}" if steps else "-"
        row = [
            meta["name"],
            status.get("phase", "-"),
            f"{status.get('realWeight', 0)}%",
            f"{status.get('shadowPercent', 0)}%",
            step,
            str((status.get("budget") or {}).get("spentUSD", "-")),
            _age(meta.get("creationTimestamp", ""), now),
        ]
        rows.append(([meta.get("namespace", "")] if all_namespaces else []) + row)
    if len(rows) == 1:
        return "No LLMRollouts found."
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _progress(status: dict[str, Any]) -> None:
    print(
        f"{status.get('phase', 'Pending')}: {status.get('realWeight', 0)}% real, step "
        f"{status.get('currentStepIndex', 0)} - {status.get('message', '')}",
        flush=True,
    )


async def _get(client: KubeClient, namespace: str, args: argparse.Namespace) -> int:
    shown = ""
    while True:
        obj = await steer.get(client, namespace, args.name)
        if args.output == "json":
            text = json.dumps(obj, indent=2)
        elif args.output == "yaml":
            text = yaml.safe_dump(obj, sort_keys=False).rstrip()
        else:
            text = render(obj)
        if text != shown:
            print(text + ("\n" if args.watch else ""), flush=True)
            shown = text
        if not args.watch:
            return 0
        await asyncio.sleep(1)


async def _dispatch(client: KubeClient, args: argparse.Namespace) -> int:
    namespace = args.namespace or client.namespace
    if args.verb == "list":
        items = await steer.rollouts(client, None if args.all_namespaces else namespace)
        if args.output == "name":
            print("\n".join(o["metadata"]["name"] for o in items))
        else:
            print(render_list(items, args.all_namespaces))
        return 0
    if args.verb == "get":
        return await _get(client, namespace, args)
    if args.verb == "status":
        code = await steer.wait(client, namespace, args.name, args.timeout, _progress)
        if code == 2:
            print(
                f"kubectl llmrollout: {namespace}/{args.name}: not Healthy within "
                f"{args.timeout:g} s",
                file=sys.stderr,
            )
        return code
    if args.verb == "dashboard":
        from rollout_operator.dashboard.server import serve

        await serve(client, None if args.all_namespaces else namespace, args.address, args.port)
        return 0
    verb = "promote-full" if args.verb == "promote" and args.full else args.verb
    argument = str(args.weight) if args.verb == "set-weight" else getattr(args, "provider", "")
    outcome = await steer.command(client, namespace, args.name, verb, argument)
    print(outcome.text, file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


async def _connected(args: argparse.Namespace, then: Callable[[KubeClient], Awaitable[int]]) -> int:
    """Log in, run `then`, and turn what can go wrong into one line that says what to do."""
    try:
        client = await KubeClient.connect(args.kubeconfig, args.context)
    except KubeError as error:
        print(f"kubectl llmrollout: {error}", file=sys.stderr)
        return 1
    where = "/".join(filter(None, [args.namespace or client.namespace, getattr(args, "name", "")]))
    try:
        return await then(client)
    except (steer.SteerError, KubeError) as error:
        print(f"kubectl llmrollout: {error}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, aiohttp.ClientError) as error:
        print(
            f"kubectl llmrollout: {where}: cannot reach the API server {client.server} "
            f"(context {client.context!r}): {error}",
            file=sys.stderr,
        )
        return 1
    finally:
        await client.close()


def completion_script(shell: str) -> str:
    """A shell function that asks `kubectl-llmrollout __complete` (so it knows verbs, flags
    and the cluster's rollout names); zsh runs the bash one through bashcompinit."""
    bash = """_kubectl_llmrollout() {
  local IFS=$'\\n' cur=${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=($(kubectl-llmrollout __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [[ ${#COMPREPLY[@]} -eq 0 && ${COMP_WORDS[COMP_CWORD-1]} == --kubeconfig ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _kubectl_llmrollout kubectl-llmrollout
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash


async def _rollouts(flags: argparse.Namespace, all_namespaces: bool) -> list[dict[str, Any]]:
    """The rollouts a completion offers; none (and no message) when the cluster says no."""
    try:
        client = await KubeClient.connect(flags.kubeconfig, flags.context)
    except KubeError:
        return []
    try:
        namespace = None if all_namespaces else flags.namespace or client.namespace
        return await steer.rollouts(client, namespace)
    except (TimeoutError, steer.SteerError, KubeError, OSError, aiohttp.ClientError):
        return []
    finally:
        await client.close()


def _contexts(flags: argparse.Namespace) -> list[str]:
    path = flags.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        contexts, _ = list_kube_config_contexts(os.path.expanduser(path))
    except (OSError, ConfigException):
        return []
    return [str(c["name"]) for c in contexts]


def complete(words: list[str]) -> list[str]:
    """Candidates for the last of `words` (the command line after the program's name)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    *before, current = words or [""]
    verb = next((w for w in before if w in commands.choices), None)
    previous = before[-1] if before else ""
    valued = previous.startswith("-") and previous not in ("-A", "--all-namespaces", "-w")
    flags, _ = _global_flags(False).parse_known_args(before[:-1] if valued else before)
    options: list[str] = []
    if previous in ("-o", "--output"):
        options = ["name"] if verb == "list" else ["json", "yaml"]
    elif previous in ("-n", "--namespace"):
        options = sorted({o["metadata"]["namespace"] for o in asyncio.run(_rollouts(flags, True))})
    elif previous == "--context":
        options = _contexts(flags)
    elif previous in ("--kubeconfig", "--port", "--address", "--timeout"):
        options = []  # a file (the shell offers them), a number, an address, a duration
    elif current.startswith("-"):
        sub = commands.choices[verb] if verb else parser
        options = [o for action in sub._actions for o in action.option_strings]
    elif verb is None:
        options = list(commands.choices)
    elif verb == "completion":
        options = list(SHELLS)
    elif verb in NAMED:
        after = before[before.index(verb) + 1 :]
        values = {
            i + 1
            for i, w in enumerate(after)
            if w in ("-n", "--namespace", "--context", "--kubeconfig", "--timeout")
        }
        named = [w for i, w in enumerate(after) if not w.startswith("-") and i not in values]
        if not named:
            options = [o["metadata"]["name"] for o in asyncio.run(_rollouts(flags, False))]
    return sorted(o for o in options if o.startswith(current))


def complete_main() -> int:
    """`kubectl_complete-llmrollout`: what kubectl (1.26+) runs for `kubectl llmrollout <TAB>`,
    answering in cobra's format: a candidate a line, then `:4` (no file names) or `:0` (the
    shell's own completion, for --kubeconfig's file)."""
    words = sys.argv[1:]
    print("\n".join(complete(words)))
    print(":0" if words[-2:-1] == ["--kubeconfig"] else ":4")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__complete"]:
        print("\n".join(complete(argv[1:])))
        return 0
    args = parse_args(argv)
    if args.verb == "completion":
        print(completion_script(args.shell), end="")
        return 0
    try:
        return asyncio.run(_connected(args, lambda client: _dispatch(client, args)))
    except KeyboardInterrupt:
        return 130
