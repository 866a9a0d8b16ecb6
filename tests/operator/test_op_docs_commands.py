"""Every `kubectl llmrollout` command in the README and docs/ (runbooks included), run exactly
as printed: through bash and the real kubectl, which finds the plugin on PATH, against the
emulated API with the operator running. Each command runs with the rollout in a state
where its verb makes sense (a `promote` needs a pause to leave), set up beforehand."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NS, Cluster, provider_spec

from rollout_operator import plugin, steer
from rollout_operator.kube import KubeClient
from tools import k8s_bins

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
NAME = "marketing-content"
PROVIDER = "openai-primary"  # the provider of `provider_spec`, as the docs name it
STEPS = {"steps": [{"setWeight": 5}, {"pause": {}}, {"setWeight": 25}, {"pause": {}},
                   {"setWeight": 100}]}  # fmt: skip
# Commands that run until stopped: what they print once they work.
COMMANDS = {"list", "dashboard", "completion", *plugin.NAMED}
LONG_RUNNING = {"--watch": "Name:      shop/marketing-content", "dashboard": "http://127.0.0.1:"}


def documented() -> list[tuple[str, str]]:
    """(document, command) for each plugin command line in a code block or inline span."""
    found: list[tuple[str, str]] = []
    for doc in DOCS:
        text = doc.read_text()
        name = str(doc.relative_to(ROOT))
        fenced = re.findall(r"^ *```[a-z]*\n(.*?)^ *```", text, re.M | re.S)
        for block in fenced:
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith(("kubectl llmrollout ", "source <(kubectl llmrollout ")):
                    found.append((name, re.sub(r"\s+#.*$", "", line)))
        prose = re.sub(r"^ *```[a-z]*\n.*?^ *```", "", text, flags=re.M | re.S)
        found += [(name, span) for span in re.findall(r"`(kubectl llmrollout [^`]+)`", prose)]
    return found


def runnable() -> list[tuple[str, str]]:
    """The full commands; an inline span naming only a verb (`kubectl llmrollout promote`)
    is a reference in prose, any other that does not parse is a broken example."""
    commands: list[tuple[str, str]] = []
    for doc, command in documented():
        words = shlex.split(command.split("<(")[-1].rstrip(")"))
        try:
            with open(os.devnull, "w") as quiet:
                saved, sys.stderr = sys.stderr, quiet
                try:
                    plugin.parse_args(words[2:])
                finally:
                    sys.stderr = saved
        except SystemExit:
            assert len(words) == 3, f"{doc}: broken {command!r}"
            assert words[2] in COMMANDS, f"{doc}: broken {command!r}"
            continue
        if (doc, command) not in commands:
            commands.append((doc, command))
    return commands


def test_the_docs_have_the_commands_this_test_runs() -> None:
    verbs = {_verb(c) for _, c in runnable()}
    for verb in ("list", "get", "status", "promote", "abort", "retry", "dashboard", "completion",
                 "disable-provider", "enable-provider"):  # fmt: skip
        assert verb in verbs, f"no documented `kubectl llmrollout {verb}`"


def _verb(command: str) -> str:
    words = shlex.split(command.split("<(")[-1].rstrip(")"))
    return next(w for w in words[2:] if w in COMMANDS)


async def _prepare(client: KubeClient, cluster: Cluster, verb: str) -> None:
    """Bring the rollout to a state in which `verb` does something."""
    phase = (await cluster.status(NAME)).get("phase")
    stopped = phase in ("Aborted", "Degraded")
    if verb == "promote" and phase != "Paused":  # back to the hand pause at step 1
        if not stopped:
            assert (await steer.command(client, NS, NAME, "abort")).ok
        assert (await steer.command(client, NS, NAME, "retry")).ok
        await cluster.wait_status(NAME, lambda s: s["phase"] == "Paused")
    elif verb in ("abort", "pause", "set-weight", "status") and stopped:
        assert (await steer.command(client, NS, NAME, "retry")).ok
    elif verb == "retry" and not stopped:
        assert (await steer.command(client, NS, NAME, "abort")).ok
    if verb == "status":
        assert (await steer.command(client, NS, NAME, "promote-full")).ok
    # A switch is run from the other position, so the command changes something.
    switched = bool((await cluster.status(NAME)).get("disabledProviders"))
    if verb == "disable-provider" and switched:
        assert (await steer.command(client, NS, NAME, "enable-provider", PROVIDER)).ok
    elif verb == "enable-provider" and not switched:
        assert (await steer.command(client, NS, NAME, "disable-provider", PROVIDER)).ok


def _run(command: str, env: dict[str, str]) -> tuple[int, str]:
    marker = next((m for key, m in LONG_RUNNING.items() if key in command), None)
    if marker is None:
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=60, env=env)  # fmt: skip
        return done.returncode, done.stdout + done.stderr
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    assert process.stdout is not None
    seen, deadline = "", time.monotonic() + 30
    try:
        while marker not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen += line
    finally:
        process.terminate()
        process.wait(10)
    return (0 if marker in seen else 1), seen


@pytest.mark.parametrize("bins", [k8s_bins.CACHE])
async def test_every_documented_plugin_command_works_as_written(
    cluster: Cluster, bins: Path
) -> None:
    kubectl = await asyncio.to_thread(k8s_bins.ensure, bins)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
           "PATH": f"{kubectl}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                   f"{os.environ['PATH']}"}  # fmt: skip
    await cluster.start_operator()
    await cluster.apply(NAME, provider_spec(cluster, strategy=STEPS))
    await cluster.wait_status(NAME, lambda s: s["phase"] == "Paused")
    client = await KubeClient.connect(str(cluster.kubeconfig))
    ran = []
    try:
        for doc, command in runnable():
            verb = _verb(command)
            await _prepare(client, cluster, verb)
            code, output = await asyncio.to_thread(_run, command, env)
            assert code == 0, f"{doc}: `{command}` exited {code}:\n{output}"
            if verb in steer.VERBS:
                assert f"{verb}: done" in output, f"{doc}: `{command}`:\n{output}"
            ran.append(command)
    finally:
        await client.close()
    assert len(ran) >= 10, ran
