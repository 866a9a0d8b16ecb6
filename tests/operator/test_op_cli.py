"""The operator's, the plugin's and the sidecar's control-channel command lines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_operator_help_and_bad_address() -> None:
    result = run("rollout_operator", "--help")
    assert result.returncode == 0
    for option in ("--namespace", "--control-listen", "0.0.0.0:8090", "--tick", "KUBECONFIG"):
        assert option in result.stdout
    result = run("rollout_operator", "--control-listen", "nowhere")
    assert result.returncode == 2
    assert "is not HOST:PORT" in result.stderr


def test_sidecar_control_flags_go_together(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("traffic: {realWeight: 0}\n")
    result = run("proxy", "--config", str(config), "--control-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "--control-url and --rollout go together" in result.stderr


def test_plugin_says_which_rollout_it_could_not_reach(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "shop"}}],
    }))  # fmt: skip
    code = (
        "import sys; from rollout_operator.plugin import main; "
        f"sys.exit(main(['--kubeconfig', {str(kubeconfig)!r}, 'get', 'marketing']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "shop/marketing" in result.stderr
