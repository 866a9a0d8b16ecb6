"""The built package carries what an installed plugin needs: the dashboard's page and
assets (it serves them offline, from the package) and both kubectl entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_the_dashboard_assets_and_the_kubectl_programs(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    [wheel] = tmp_path.glob("llm_rollout-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith("entry_points.txt"))  # fmt: skip
    for asset in ("index.html", "app.js", "style.css"):
        assert f"rollout_operator/dashboard/static/{asset}" in names
    assert "kubectl-llmrollout = rollout_operator.plugin:main" in entry_points
    assert "kubectl_complete-llmrollout = rollout_operator.plugin:complete_main" in entry_points
    # No CDN, works offline: the assets name no other host.
    for asset in (ROOT / "rollout_operator/dashboard/static").iterdir():
        assert "://" not in asset.read_text(), asset.name
