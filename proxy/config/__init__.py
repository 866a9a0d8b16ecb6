"""The `LLMRollout` schema shared by the sidecar and the operator (pure: no aiohttp, no kopf)."""

from proxy.config.loader import ConfigError, load_file, load_text, parse_spec
from proxy.config.model import (
    MOCK,
    ApiKey,
    LLMRollout,
    LLMRolloutSpec,
    Provider,
    ProviderType,
    parse_duration,
)

__all__ = [
    "MOCK",
    "ApiKey",
    "ConfigError",
    "LLMRollout",
    "LLMRolloutSpec",
    "Provider",
    "ProviderType",
    "load_file",
    "load_text",
    "parse_duration",
    "parse_spec",
]
