"""Reading a config file into a validated spec, with errors a person can act on.

A bad file must say *every* bad field with its path and the reason at once, so
the operator of the sidecar fixes it in one go rather than one error per restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from proxy.config.model import LLMRollout, LLMRolloutSpec


class ConfigError(ValueError):
    """An unusable config: `problems` lists ``path: reason`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid config {source}:\n  " + "\n  ".join(problems))


def _path(loc: tuple[int | str, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _problems(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in error.errors():
        loc = item["loc"]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check spelling; fields are camelCase)"
        lines.append(f"{_path(loc, prefix)}: {message}")
    return lines


def parse_spec(document: Any, source: str = "<config>") -> LLMRolloutSpec:
    """A spec from parsed YAML: a whole `LLMRollout` document or just its `spec`."""
    if not isinstance(document, dict):
        raise ConfigError(source, ["(document): expected a mapping (an LLMRollout or its spec)"])
    try:
        if "spec" in document or "kind" in document:
            return LLMRollout.model_validate(document).spec
        return LLMRolloutSpec.model_validate(document)
    except ValidationError as error:
        raise ConfigError(source, _problems(error, "")) from None


def load_text(text: str, source: str = "<config>") -> LLMRolloutSpec:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"(document): not valid YAML: {error}"]) from None
    return parse_spec(document, source)


def load_file(path: str | Path) -> LLMRolloutSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"(file): cannot read: {error.strerror}"]) from None
    return load_text(text, str(path))
