"""`kubectl llmrollout` as a kubectl user meets it: flags anywhere, list/get/status, errors that
say what to do, exec credential plugins, completion, and no key material left on disk."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import NS, Cluster, provider_spec

from rollout_operator import plugin
from rollout_operator.crd import GROUP, PLURAL, VERSION
from rollout_operator.kube import KubeClient, rollout_path
from rollout_operator.webhook import tls
from tools import k8s_bins

BIN = Path(sys.executable).parent
STEPS = {"steps": [{"setWeight": 5}, {"pause": {}}, {"setWeight": 100}]}


async def run(*argv: str) -> int:
    return await asyncio.to_thread(plugin.main, list(argv))


def kubeconfig(cluster: Cluster, path: Path, user: dict[str, Any]) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": str(cluster.server.url).rstrip("/")}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    return path


async def test_flags_anywhere_list_get_output_and_status_exit_codes(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster, strategy=STEPS))
    await cluster.wait_status("marketing", lambda s: s["phase"] == "Paused")
    kc = str(cluster.kubeconfig)
    capsys.readouterr()
    # Flags after the verb and the name, as in the README; the namespace from the flag.
    assert await run("list", "-n", NS, "--kubeconfig", kc) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "WEIGHT", "SHADOW", "STEP", "SPENT", "AGE"]
    assert table[1].split()[:5] == ["marketing", "Paused", "5%", "0%", "1/3"]
    assert await run("--kubeconfig", kc, "list", "-A") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == [NS, "marketing", "Paused"]
    assert await run("list", "-o", "name", "-n", NS) == 0
    assert capsys.readouterr().out == "marketing\n"
    assert await run("get", "marketing", "-o", "json", "--namespace", NS) == 0
    assert json.loads(capsys.readouterr().out)["status"]["realWeight"] == 5
    assert await run("get", "-o", "yaml", "marketing", "--context", "test", "-n", NS) == 0
    assert yaml.safe_load(capsys.readouterr().out)["status"]["phase"] == "Paused"

    # status: 2 when it is not Healthy in time, 0 once promoted, 1 when aborted.
    assert await run("status", "marketing", "-n", NS, "--timeout", "1s") == 2
    out, err = capsys.readouterr()
    assert "Paused: 5% real, step 1" in out
    assert "shop/marketing: not Healthy within 1 s" in err
    waiting = asyncio.create_task(run("status", "marketing", "-n", NS, "--timeout", "30s"))
    await asyncio.sleep(1)
    assert await run("promote", "marketing", "-n", NS) == 0
    assert await waiting == 0
    out = capsys.readouterr().out
    assert "promote: done" in out
    assert "Healthy: 100% real, step 3" in out
    assert await run("abort", "marketing", "-n", NS) == 0
    assert await run("status", "marketing", "-n", NS) == 1
    assert "Aborted: 0% real" in capsys.readouterr().out


async def test_errors_say_what_to_do(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("get", "nothing-here", "-n", NS) == 1
    err = capsys.readouterr().err
    assert "rollout shop/nothing-here not found" in err
    assert "`kubectl llmrollout list -A`" in err

    cluster.k8s.tokens = {"operator-token": 200, "reader": 403}
    reader = kubeconfig(cluster, tmp_path / "reader", {"token": "reader"})
    assert await run("promote", "marketing", "-n", NS, "--kubeconfig", str(reader)) == 1
    err = capsys.readouterr().err
    assert "shop/marketing: forbidden" in err
    assert "kubectl auth can-i patch llmrollouts.llm-rollout.io -n shop" in err
    stranger = kubeconfig(cluster, tmp_path / "stranger", {"token": "who"})
    assert await run("list", "--kubeconfig", str(stranger), "-A") == 1
    assert "rejected the credentials of context 'c'" in capsys.readouterr().err

    cluster.k8s.tokens = None
    del cluster.k8s.resources[f"{GROUP}/{VERSION}/{PLURAL}"]
    assert await run("list", "-n", NS) == 1
    err = capsys.readouterr().err
    assert "the LLMRollout CRD (llmrollouts.llm-rollout.io) is not installed" in err
    assert "docs/install.md" in err


EXEC_PLUGIN = """#!{python}
import json, os, sys, datetime
with open({calls!r}, "a") as calls:
    calls.write(os.environ["KUBERNETES_EXEC_INFO"] + "\\n")
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=int(sys.argv[2]))
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {{"token": sys.argv[1],
                             "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}))
"""


async def test_an_exec_credential_plugin_logs_in(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `aws eks get-token` does: a program prints an ExecCredential with a token."""
    calls = tmp_path / "calls"
    script = tmp_path / "get-token"
    script.write_text(EXEC_PLUGIN.format(python=sys.executable, calls=str(calls)))
    script.chmod(0o755)

    def exec_user(token: str, lifetime: int = 3600) -> dict[str, Any]:
        return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                         "args": [token, str(lifetime)], "interactiveMode": "Never"}}  # fmt: skip

    good = kubeconfig(cluster, tmp_path / "exec", exec_user("exec-token"))
    cluster.k8s.tokens = {"operator-token": 200, "exec-token": 200}
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster, strategy=STEPS))
    await cluster.wait_status("marketing", lambda s: s["phase"] == "Paused")
    capsys.readouterr()
    assert await run("promote", "marketing", "-n", NS, "--kubeconfig", str(good)) == 0
    assert "promote: done; phase Healthy, 100% real" in capsys.readouterr().out
    info = json.loads(calls.read_text().splitlines()[0])
    assert info["kind"] == "ExecCredential"

    # A long-lived credential runs the plugin once per login; one about to expire (EKS
    # tokens last 15 min) is fetched again before the request that would need it.
    for lifetime, runs in ((3600, 1), (1, 3)):
        before = len(calls.read_text().splitlines())
        config = kubeconfig(
            cluster, tmp_path / f"exec-{lifetime}", exec_user("exec-token", lifetime)
        )
        client = await KubeClient.connect(str(config))
        try:
            for _ in range(2):
                await client.request("GET", rollout_path(NS, "marketing"))
        finally:
            await client.close()
        assert len(calls.read_text().splitlines()) - before == runs, lifetime

    bad = kubeconfig(cluster, tmp_path / "bad", exec_user("expired-token"))
    assert await run("get", "marketing", "-n", NS, "--kubeconfig", str(bad)) == 1
    assert "rejected the credentials" in capsys.readouterr().err


async def test_client_certificates_leave_no_key_material_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubeconfig certificate data becomes files only while the TLS context loads them: none
    are left while the client is in use (a dashboard runs for hours; a kill skips atexit)."""
    bundle = tls.generate("api", "default")
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9",
                                               "certificate-authority-data": b64(bundle.ca_pem)}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64(bundle.cert_pem),
                                         "client-key-data": b64(bundle.key_pem)}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": NS}}],
    }))  # fmt: skip
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for _ in range(2):  # the loader's cache of file names must not outlive the files
        client = await KubeClient.connect(str(config))
        try:
            assert client.namespace == NS
            assert list(temp.rglob("*")) == []
            with pytest.raises(OSError, match=r"127\.0\.0\.1"):
                await client.request("GET", "/api/v1/namespaces")
        finally:
            await client.close()
    result = await asyncio.to_thread(
        subprocess.run, [BIN / "kubectl-llmrollout", "get", "marketing", "--kubeconfig", config],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "shop/marketing: cannot reach the API server https://127.0.0.1:9" in result.stderr


async def test_completion_offers_verbs_flags_and_the_clusters_rollouts(cluster: Cluster) -> None:
    await cluster.apply("marketing", provider_spec(cluster))
    await cluster.apply("search", provider_spec(cluster))
    assert plugin.complete(["pro"]) == ["promote"]
    assert plugin.complete(["get", "-o", ""]) == ["json", "yaml"]
    assert "--timeout" in plugin.complete(["status", "--"])
    assert await asyncio.to_thread(plugin.complete, ["-n", ""]) == [NS]
    names = await asyncio.to_thread(plugin.complete, ["abort", "-n", NS, ""])
    assert names == ["marketing", "search"]
    assert plugin.complete(["abort", "marketing", ""]) == []
    assert plugin.complete(["completion", ""]) == ["bash", "zsh"]
    # The bash function as a shell runs it on <TAB>.
    script = (
        'source <(kubectl-llmrollout completion bash)\n'
        'COMP_WORDS=(kubectl-llmrollout promote -n shop m); COMP_CWORD=4\n'
        '_kubectl_llmrollout; echo "${COMPREPLY[@]}"\n'
    )  # fmt: skip
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    result = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": path, "KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert result.stdout.strip() == "marketing", result.stderr
    # `kubectl llmrollout <TAB>`: kubectl itself asks kubectl_complete-llmrollout.
    kubectl = await asyncio.to_thread(k8s_bins.ensure)
    result = await asyncio.to_thread(
        subprocess.run, ["kubectl", "__complete", "llmrollout", "abort", "-n", NS, ""],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{kubectl}{os.pathsep}{path}",
             "KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert result.stdout.splitlines() == ["marketing", "search", ":4"], result.stderr


def test_completion_script_for_zsh_loads_bash_completion() -> None:
    result = subprocess.run([BIN / "kubectl-llmrollout", "completion", "zsh"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -F _kubectl_llmrollout kubectl-llmrollout" in result.stdout


def test_age_column_reads_kubernetes_timestamps() -> None:
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert plugin._age("2026-01-02T03:00:00Z", now) == "4m"
    assert plugin._age("2026-01-01T03:00:00Z", now) == "1d"
