"""The command line: help, start-up errors that name the field, a real process that serves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_explains_every_option() -> None:
    result = run("--help")
    assert result.returncode == 0
    for option in ("--config", "--listen", "--admin-listen", "--max-body-bytes", "--log-level",
                   "--body-timeout", "--idle-timeout", "--max-connections",
                   "--admin-expose-config",
                   "127.0.0.1:8100", "0.0.0.0:8101", "LLM_ROLLOUT_FORCE_MOCK"):  # fmt: skip
        assert option in result.stdout


def test_bad_config_fails_at_start_with_every_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("traffic: {realWeight: -1}\nforceMock: maybe\n")
    result = run("--config", str(config))
    assert result.returncode == 2
    assert "traffic.realWeight: Input should be greater than or equal to 0" in result.stderr
    assert "forceMock: Input should be a valid boolean" in result.stderr


def test_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--config", "x.yaml", "--listen", "nowhere")
    assert result.returncode == 2
    assert "is not HOST:PORT" in result.stderr


def test_process_serves_and_honours_the_env_kill_switch(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "providers: [{name: oa, type: openai, baseURL: 'http://127.0.0.1:9/v1', "
        "apiKey: {env: NOPE}}]\ntraffic: {realWeight: 100}\n"
    )
    data, admin = free_port(), free_port()
    env = {"LLM_ROLLOUT_FORCE_MOCK": "true", "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--config", str(config), "--listen", f"127.0.0.1:{data}",
         "--admin-listen", f"127.0.0.1:{admin}"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz") as ready:
                    assert ready.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "sidecar did not become ready"
                time.sleep(0.05)
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        request = urllib.request.Request(
            f"http://127.0.0.1:{data}/v1/chat/completions", data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request) as response:
            assert response.headers["x-llm-backend"] == "mock"
            assert response.headers["x-llm-route-reason"] == "force-mock"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, "SIGTERM is a clean shutdown"
    assert "sidecar ready" in stderr
