"""Provider keys: resolved in the sidecar, never handed to the app, never logged.

A key file is re-read when its modification time changes, so a Kubernetes Secret
rotated in place (kubelet swaps the mounted file) takes effect without a restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proxy.config import ApiKey

#: Where the injected sidecar finds mounted Secrets: ``<dir>/<secret name>/<key>``.
SECRETS_DIR_ENV = "LLM_ROLLOUT_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/var/run/secrets/llm-rollout"


class MissingKey(Exception):
    """A provider's key cannot be read; the message says where it was looked for."""


@dataclass(slots=True)
class _Cached:
    mtime_ns: int
    value: str


class KeyStore:
    def __init__(self) -> None:
        self._files: dict[Path, _Cached] = {}

    def path_of(self, source: ApiKey) -> Path | None:
        if source.file is not None:
            return Path(source.file)
        if source.secret_ref is not None:
            base = Path(os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR))
            return base / source.secret_ref.name / source.secret_ref.key
        return None

    def get(self, source: ApiKey) -> str:
        if source.env is not None:
            value = os.environ.get(source.env, "").strip()
            if not value:
                raise MissingKey(f"environment variable {source.env} is not set")
            return value
        path = self.path_of(source)
        assert path is not None  # ApiKey guarantees exactly one source
        cached = self._files.get(path)
        if cached is None:
            return self._read(path).value
        return cached.value

    def refresh(self) -> None:
        """Re-read key files whose modification time changed (called by the watcher)."""
        for path, cached in list(self._files.items()):
            try:
                if path.stat().st_mtime_ns != cached.mtime_ns:
                    self._read(path)
            except (OSError, MissingKey):
                self._files.pop(path, None)

    def _read(self, path: Path) -> _Cached:
        try:
            stat = path.stat()
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise MissingKey(f"key file {path} cannot be read ({error.strerror})") from None
        if not value:
            raise MissingKey(f"key file {path} is empty")
        cached = self._files[path] = _Cached(stat.st_mtime_ns, value)
        return cached
