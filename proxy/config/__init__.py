"""The `LLMRollout` schema shared by the sidecar and the operator (pure: no aiohttp, no kopf)."""

from proxy.config.control import (
    LATENCY_BOUNDS_MS,
    AllowanceRequest,
    Arm,
    ArmWindow,
    EffectiveConfig,
    Grant,
    QualityWindow,
    WindowReport,
    merge_windows,
)
from proxy.config.loader import ConfigError, load_file, load_text, parse_spec
from proxy.config.model import (
    MOCK,
    ApiKey,
    Azure,
    LabelSelector,
    LLMRollout,
    LLMRolloutSpec,
    Provider,
    ProviderKind,
    ProviderType,
    parse_duration,
)
from proxy.config.selector import selects

__all__ = [
    "LATENCY_BOUNDS_MS",
    "MOCK",
    "AllowanceRequest",
    "ApiKey",
    "Arm",
    "ArmWindow",
    "Azure",
    "ConfigError",
    "EffectiveConfig",
    "Grant",
    "LLMRollout",
    "LLMRolloutSpec",
    "LabelSelector",
    "Provider",
    "ProviderKind",
    "ProviderType",
    "QualityWindow",
    "WindowReport",
    "load_file",
    "load_text",
    "merge_windows",
    "parse_duration",
    "parse_spec",
    "selects",
]
