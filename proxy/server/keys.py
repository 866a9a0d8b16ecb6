"""Provider keys: resolved in the sidecar, never handed to the app, never logged.

A key file is re-read when its modification time changes, so a Kubernetes Secret
rotated in place (kubelet swaps the mounted file) takes effect without a restart.
A file that disappears, or is rewritten with something that cannot be a key, keeps
the last good key in use and is reported (`on_problem`: a log line and the
``llm_rollout_key_problems_total`` counter an alert watches).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proxy.config import ApiKey, LLMRolloutSpec, ProviderKind
from proxy.config.keyformat import key_problem

#: Where the injected sidecar finds mounted Secrets: ``<dir>/<secret name>/<key>``.
SECRETS_DIR_ENV = "LLM_ROLLOUT_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/var/run/secrets/llm-rollout"


class MissingKey(Exception):
    """A provider's key cannot be read; the message says where it was looked for."""


#: `_Cached.mtime_ns` of a key file found missing (and reported).
_GONE = -1


@dataclass(slots=True)
class _Cached:
    mtime_ns: int
    value: str


class KeyStore:
    def __init__(
        self,
        on_problem: Callable[[str, str], None] | None = None,
        on_rotated: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._files: dict[Path, _Cached] = {}
        #: Which provider each key file belongs to (its type decides the key's shape).
        self._owners: dict[Path, tuple[str, ProviderKind, ApiKey]] = {}
        #: The keys the last `check` found well-formed, by provider (for the audit trail).
        self.loaded: dict[str, list[str]] = {}
        #: Called with (provider, reason) when a key file goes bad; the old key stays.
        self.on_problem = on_problem or (lambda provider, reason: None)
        #: Called with (provider, old key, new key) when a key file's key changes.
        self.on_rotated = on_rotated or (lambda provider, old, new: None)

    def check(self, spec: LLMRolloutSpec) -> list[str]:
        """Problems with the keys `spec` names, as ``providers[i].apiKey: reason`` lines.

        A key that cannot be read yet is not a problem here (it is reported when a
        request needs it, as before); one that can be read must look like a key of
        its provider's type. Never includes the key.
        """
        problems = []
        self.loaded = {}
        for index, provider in enumerate(spec.providers):
            for number, source in enumerate(provider.key_sources):
                field = f"apiKeys[{number}]" if provider.api_keys else "apiKey"
                if (path := self.path_of(source)) is not None:
                    self._owners[path] = (provider.name, provider.type, source)
                try:
                    key = self._peek(source)
                except MissingKey:
                    continue
                if (reason := key_problem(provider.type, source, key)) is not None:
                    problems.append(f"providers[{index}].{field} ('{provider.name}'): {reason}")
                else:
                    self.loaded.setdefault(provider.name, []).append(key)
        return problems

    def _peek(self, source: ApiKey) -> str:
        """The key as it is now, without caching it."""
        if source.env is not None:
            return self.get(source)
        path = self.path_of(source)
        assert path is not None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise MissingKey(f"key file {path} cannot be read ({error.strerror})") from None

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
        """Re-read key files whose modification time changed (called by the watcher).

        A file gone or unreadable, or holding no usable key, keeps the last good key.
        """
        for path, cached in list(self._files.items()):
            try:
                mtime = path.stat().st_mtime_ns
            except OSError as error:
                if cached.mtime_ns != _GONE:  # reported once, not on every poll
                    cached.mtime_ns = _GONE
                    self._report(path, f"key file {path} is gone ({error.strerror})")
                continue
            if mtime == cached.mtime_ns:
                continue
            try:
                self._read(path)
            except MissingKey as error:
                cached.mtime_ns = mtime  # this version was looked at: reported once
                self._report(path, str(error))

    def _report(self, path: Path, reason: str) -> None:
        owner = self._owners.get(path)
        self.on_problem(owner[0] if owner else str(path), f"{reason}; the last good key stays")

    def _read(self, path: Path) -> _Cached:
        try:
            stat = path.stat()
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise MissingKey(f"key file {path} cannot be read ({error.strerror})") from None
        if not value:
            raise MissingKey(f"key file {path} is empty")
        owner = self._owners.get(path)
        if owner is not None and (reason := key_problem(owner[1], owner[2], value)) is not None:
            raise MissingKey(f"key file {path} of provider '{owner[0]}': {reason}")
        previous = self._files.get(path)
        cached = self._files[path] = _Cached(stat.st_mtime_ns, value)
        if previous is not None and previous.value != value and owner is not None:
            self.on_rotated(owner[0], previous.value, value)
        return cached

    def held(self, provider: str) -> set[str]:
        """The keys `provider`'s key files hold now (a pool's old key may be in two slots)."""
        return {
            cached.value
            for path, cached in self._files.items()
            if (owner := self._owners.get(path)) is not None and owner[0] == provider
        }
