"""docs/runbooks/key-rotation.md, run as printed: each `sh` block through bash and the real
kubectl against the emulated API, while an app sends requests through a sidecar with the
OpenAI SDK. The test plays the parts the emulator has no code for: the API server's
``stringData`` merge and the kubelet writing the Secret's keys into the sidecar's mount
(what it does on its sync), and the container runtime answering ``kubectl logs`` with what
the sidecar wrote to stdout (its audit trail). Zero failed requests, the old key out of use
at the end, and the audit events the runbook shows."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kmock
import pytest
from conftest import NS, Cluster

from proxy.config.audit import AuditLog, fingerprint
from tests.conftest import StartSidecar, openai_client, real_spec
from tests.fakes.openai import FakeOpenAI
from tests.test_admin import get
from tests.test_keypool import used_keys
from tools import k8s_bins

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbooks" / "key-rotation.md"
OLD = "sk-rotation-old-key-0000000000000000"
NEW = "sk-rotation-new-key-00000000000004d2f"
SLOTS = ("openai-a", "openai-b")
SECRET = f"/api/v1/namespaces/{NS}/secrets"
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
POD = "marketing-api-7d9f8b6c5-x2k4q"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", RUNBOOK.read_text(), re.M | re.S)


def commands() -> list[str]:
    """The runbook's `sh` blocks, dedented as a shell sees them after copy and paste."""
    return ["\n".join(line.strip() for line in block.splitlines()) for block in blocks("sh")]


def core_api(k8s: Any, audit: io.StringIO) -> None:
    """Secrets, pods and pod logs in the emulator, discoverable by kubectl."""
    k8s.resources["v1/secrets"] = kmock.ResourceInfo(namespaced=True, kind="Secret")
    k8s["get /api/v1"] << {
        "apiVersion": "v1", "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [
            {"name": name, "kind": kind, "singularName": name[:-1], "namespaced": True,
             "verbs": verbs}
            for name, kind, verbs in (("secrets", "Secret", VERBS), ("pods", "Pod", VERBS),
                                      ("pods/log", "Pod", ["get"]))
        ],
    }  # fmt: skip

    async def logs(request: Any) -> bytes:  # bytes: kmock sends them as they are
        return audit.getvalue().encode()

    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": POD, "namespace": NS, "labels": {"app": "marketing-api"}},
           "spec": {"containers": [{"name": "app"}], "initContainers": [
               {"name": "llm-rollout-proxy", "restartPolicy": "Always"}]}}  # fmt: skip
    k8s[f"get /api/v1/namespaces/{NS}/pods"] << {"apiVersion": "v1", "kind": "PodList",
                                                 "metadata": {}, "items": [pod]}  # fmt: skip
    k8s[f"get /api/v1/namespaces/{NS}/pods/{POD}"] << pod
    k8s[f"get /api/v1/namespaces/{NS}/pods/{POD}/log"] << logs


async def kubelet_sync(cluster: Cluster, mount: Path) -> None:
    """Write the Secret's keys into the sidecar's mount as the kubelet does: each file
    replaced whole (never half-written), `stringData` merged as the API server does."""
    secret = await cluster.api("GET", f"{SECRET}/llm-keys")
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values |= secret.get("stringData") or {}
    for slot in SLOTS:
        path = mount / slot
        if slot in values and (not path.exists() or path.read_text() != values[slot]):
            staged = mount / f"..{slot}.tmp"
            staged.write_text(values[slot])
            staged.replace(path)


async def test_the_key_rotation_runbook_rotates_with_no_failed_request(
    cluster: Cluster,
    start_sidecar: StartSidecar,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit = io.StringIO()
    core_api(cluster.k8s, audit)
    old = base64.b64encode(OLD.encode()).decode()
    await cluster.api("POST", SECRET, {"apiVersion": "v1", "kind": "Secret",
                                       "metadata": {"name": "llm-keys", "namespace": NS},
                                       "data": dict.fromkeys(SLOTS, old)})  # fmt: skip
    mount = tmp_path / "secrets"
    (mount / "llm-keys").mkdir(parents=True)
    monkeypatch.setenv("LLM_ROLLOUT_SECRETS_DIR", str(mount))
    await kubelet_sync(cluster, mount / "llm-keys")
    # The pool of two slots, as the runbook's YAML gives it.
    (pool,) = (yaml_block for yaml_block in blocks("yaml") if "apiKeys" in yaml_block)
    spec = real_spec(fake_openai, retry={"maxAttempts": 1})
    del spec["providers"][0]["apiKey"]
    spec["providers"][0]["apiKeys"] = [
        {"secretRef": {"name": "llm-keys", "key": slot}} for slot in SLOTS
    ]
    for slot in SLOTS:
        assert f"secretRef: {{name: llm-keys, key: {slot}}}" in pool
    fake_openai.key = OLD
    sidecar = await start_sidecar(spec, tmp_path / "unused.yaml", watch_interval=0.05,
                                  audit=AuditLog(audit, "sidecar"))  # fmt: skip
    client = openai_client(sidecar)
    failures: list[Exception] = []
    answered = 0
    stop = asyncio.Event()

    async def app() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
                )
                answered += 1
            except Exception as error:  # any failure is what the test counts
                failures.append(error)

    kubectl = await asyncio.to_thread(k8s_bins.ensure, k8s_bins.CACHE)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
           "PATH": f"{kubectl}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                   f"{os.environ['PATH']}"}  # fmt: skip
    steps = commands()
    assert len(steps) == 3, steps
    # One shell, as a person runs the runbook: step 2's variable is still set in step 4.
    shell = await asyncio.create_subprocess_exec(
        "bash", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert shell.stdin is not None
    assert shell.stdout is not None

    async def run(block: str, typed: str = "") -> str:
        """Run `block` in the shell; `typed`: what the person types when its first line,
        a `read`, waits for it (the shell reads its commands and that line from stdin)."""
        assert shell.stdin is not None
        assert shell.stdout is not None
        if typed:
            first, rest = block.split("\n", 1)
            block = f"{first}\n{typed}\n{rest}"
        shell.stdin.write(f'{block}\necho "::exit $?"\n'.encode())
        await shell.stdin.drain()
        output = ""
        while "::exit " not in output:
            line = await asyncio.wait_for(shell.stdout.readline(), 30)
            assert line, f"the shell ended while running:\n{block}\n{output}"
            output += line.decode()
        code = int(output.rsplit("::exit ", 1)[1])
        assert code == 0, f"`{block}` exited {code}:\n{output}"
        return output.rsplit("::exit ", 1)[0]

    task = asyncio.create_task(app())
    try:
        await asyncio.sleep(0.3)  # traffic on the old key
        fake_openai.also_accepted = {NEW}  # 1. the new key is issued, the old one valid
        await run(steps[0], typed=NEW)
        await kubelet_sync(cluster, mount / "llm-keys")
        await asyncio.sleep(0.5)  # the pool now calls with both keys
        both = set(used_keys(fake_openai)[-10:])
        overlap = await health(sidecar.admin_port)
        listed = await run(steps[1])
        await run(steps[2])
        await kubelet_sync(cluster, mount / "llm-keys")
        await asyncio.sleep(0.3)
        after = await health(sidecar.admin_port)
        fake_openai.key, fake_openai.also_accepted = NEW, set()  # 5. the old key revoked
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
        shell.stdin.close()
        await shell.wait()
    assert failures == [], failures[:1]
    assert answered > 20
    assert both == {OLD, NEW}, "between steps 2 and 4 the pool calls with both keys"
    assert set(used_keys(fake_openai)[-10:]) == {NEW}, "the old key is out of use"
    events = [json.loads(line) for line in audit.getvalue().splitlines()]
    rotated = [e for e in events if e["event"] == "key.rotated"]
    prints = fingerprint("openai-primary", OLD), fingerprint("openai-primary", NEW)
    assert overlap == {prints[0]: "ok", prints[1]: "ok"}, "/health/llm: both keys in the pool"
    assert after == {prints[1]: "ok"}, "/health/llm: the old key has left the pool"
    assert [(e["old"], e["new"]) for e in rotated] == [prints, prints], "one per slot"
    # Step 3's check printed the first, in the shape the runbook shows.
    (shown,) = (json.loads(b) for b in blocks("json") if "key.rotated" in b)
    assert set(shown) == set(rotated[0])
    assert json.loads(listed.strip().splitlines()[-1]) == rotated[0]
    everything = audit.getvalue() + listed
    assert OLD not in everything
    assert NEW not in everything


async def health(port: int) -> dict[str, str]:
    keys: dict[str, str] = json.loads((await get(port, "/health/llm"))[1])["keys"]["openai-primary"]
    return keys


def test_the_runbook_has_the_steps_this_test_runs() -> None:
    steps = commands()
    assert steps[0].startswith("read -rs NEW_OPENAI_KEY\nkubectl patch secret llm-keys")
    assert "kubectl logs" in steps[1]
    assert "openai-a" in steps[2]
    subprocess.run(["bash", "-n", "-c", "\n".join(steps)], check=True)  # valid shell
