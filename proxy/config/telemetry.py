"""An OpenTelemetry tracer provider set up from the standard ``OTEL_*`` variables.

Shared by the sidecar (request spans) and the operator (reconcile and analysis
spans), so both turn on, sample, label and export the same way: on only when an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``..._TRACES_ENDPOINT``)
and ``OTEL_SDK_DISABLED`` is not true; exported over OTLP/HTTP in batches
(`proxy.config.otlp_export`: the stock exporter with a cheaper encoding).
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from proxy.config.otlp_export import CachingOTLPSpanExporter

_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def provider_from_env(service: str) -> tuple[TracerProvider, BatchSpanProcessor] | None:
    """A provider exporting to the configured endpoint and its exporting processor (the
    sidecar hands its spans to it directly), or None: tracing is off."""
    if env_flag("OTEL_SDK_DISABLED") or not any(os.environ.get(n) for n in _ENDPOINT_ENVS):
        return None
    # The detector reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (which win over
    # the default name); TracerProvider reads OTEL_TRACES_SAMPLER(_ARG); the exporter
    # reads the endpoint, headers, timeout and compression variables.
    resource = Resource.create({"service.name": service}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    processor = BatchSpanProcessor(CachingOTLPSpanExporter())
    provider.add_span_processor(processor)
    return provider, processor
