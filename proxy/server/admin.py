"""The admin port: health, readiness, Prometheus metrics and the effective config.

Separate from the data port so that probes and scrapes work from outside the pod
while the data port stays on loopback.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.config import MOCK
from proxy.server.runtime import Runtime

ADMIN_RUNTIME = web.AppKey("admin_runtime", Runtime)
READY = web.AppKey("ready", dict)


def effective_config(runtime: Runtime) -> dict[str, Any]:
    """The config in force as JSON. Keys are never in it: only where they are read from."""
    snapshot = runtime.snapshot
    return {
        "version": snapshot.version,
        "source": snapshot.source,
        "loadedAt": snapshot.loaded_at,
        "forceMockEnv": runtime.force_mock_env,
        "lastRejected": runtime.last_error,
        "spec": snapshot.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "providers": runtime.resilience.status(runtime.clock()),
    }


def llm_health(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Whether some path to an answer is usable now, and every backend's state.

    The mock is a path when it serves traffic at all: the mock arm (weight below
    100, or the kill switch) or the end of the fallback chain.
    """
    spec = runtime.snapshot.spec
    providers = runtime.resilience.status(runtime.clock())
    mock_usable = (
        spec.traffic.real_weight < 100
        or spec.force_mock
        or runtime.force_mock_env
        or MOCK in spec.fallback
    )
    healthy = mock_usable or any(p["usable"] for p in providers)
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "providers": providers,
        "mock": {"usable": mock_usable},
        "keys": runtime.pool.states,  # provider -> {key fingerprint: ok | resting | rejected}
    }


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[READY].get("data"):
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "starting"}, status=503)


async def health_llm(request: web.Request) -> web.Response:
    healthy, body = llm_health(request.app[ADMIN_RUNTIME])
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[ADMIN_RUNTIME]
    runtime.refresh_breaker_gauges()  # open turns half-open by the clock, not by an event
    body = generate_latest(runtime.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def from_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def config(request: web.Request) -> web.Response:
    """The effective config: from inside the pod only, unless `--admin-expose-config`.

    The admin port listens on the pod's IP for probes and Prometheus; what the config
    says (providers, where keys come from, budgets) is not for the whole cluster."""
    runtime = request.app[ADMIN_RUNTIME]
    if not (runtime.limits.expose_config or from_loopback(request)):
        return web.json_response(
            {"error": "/config is served to loopback only; start the sidecar with "
                      "--admin-expose-config to serve it on the pod's IP"},
            status=403,
        )  # fmt: skip
    return web.json_response(
        effective_config(request.app[ADMIN_RUNTIME]), dumps=lambda o: json.dumps(o, indent=2)
    )


async def cache_flush(request: web.Request) -> web.Response:
    """Drop every cached answer; only from inside the pod (the admin port is reachable outside)."""
    if not from_loopback(request):
        raise web.HTTPForbidden(text="cache flush is accepted from loopback only\n")
    cache = request.app[ADMIN_RUNTIME].cache
    flushed = await cache.flush()
    if flushed is None:
        where = cache.redis.where if cache.redis is not None else "?"
        return web.json_response(
            {"error": f"Redis at {where} did not answer the flush; entries expire with "
                      "cache.ttlSeconds, or try again"}, status=503)  # fmt: skip
    return web.json_response({"flushed": flushed})


def build_admin_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[ADMIN_RUNTIME] = runtime
    app[READY] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/health/llm", health_llm)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/config", config)
    app.router.add_post("/cache/flush", cache_flush)
    return app
