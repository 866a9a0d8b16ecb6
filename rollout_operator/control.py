"""The control channel: sidecars long-poll their rollout's config and push window stats.

    GET  /v1/namespaces/{ns}/llmrollouts/{name}/config?after=V&timeout=S
         -> 200 EffectiveConfig as soon as its version differs from V, or 304 after S s
    POST /v1/namespaces/{ns}/llmrollouts/{name}/stats      WindowReport -> 204
    POST /v1/namespaces/{ns}/llmrollouts/{name}/allowance  AllowanceRequest -> 200 Grant

Every call carries ``Authorization: Bearer <projected ServiceAccount token>``.
See docs/control-channel.md. The handlers only authenticate, parse and hand over
to the hub; the hub does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from decimal import Decimal

from aiohttp import web
from pydantic import ValidationError

from proxy.config import AllowanceRequest, Grant, WindowReport
from rollout_operator.auth import Authenticator, Denied
from rollout_operator.hub import Hub, Implausible, Live
from rollout_operator.ledger import NotYours, digest

log = logging.getLogger("llm_rollout.operator.control")

HUB = web.AppKey("hub", Hub)
AUTH = web.AppKey("auth", Authenticator)
MAX_TIMEOUT = web.AppKey("max_timeout", float)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _close_with(error: type[web.HTTPException], message: str) -> web.HTTPException:
    # A standby replica knows no rollout. Closing the connection makes the sidecar's
    # retry open a new one, which the Service may send to the active replica; a
    # kept-alive connection would bring it back here on every retry.
    return error(
        text=json.dumps({"error": message}),
        content_type="application/json",
        headers={"Connection": "close"},
    )


async def _caller(request: web.Request) -> tuple[Live, str]:
    hub = request.app[HUB]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if not hub.active:
        raise _close_with(
            web.HTTPServiceUnavailable,
            "this operator replica is the standby; the active one serves the control channel",
        )
    live = hub.rollouts.get((namespace, name))
    if live is None:
        message = f"no LLMRollout {namespace}/{name} is managed by this operator"
        raise _close_with(web.HTTPNotFound, message)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token:
            raise Denied(401, "send Authorization: Bearer <token>")
        sidecar = await request.app[AUTH].authenticate(token, namespace, live.spec.selector)
    except Denied as denied:
        hub.auth_failed(namespace, name, denied.status, denied.who, str(denied))
        error = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden}[denied.status]
        body = json.dumps({"error": str(denied)})
        raise error(text=body, content_type="application/json") from None
    live.joined.setdefault(sidecar, time.time())
    return live, sidecar


async def config(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    live, sidecar = await _caller(request)
    try:
        after = int(request.query.get("after", "0"))
        timeout = min(float(request.query.get("timeout", "30")), request.app[MAX_TIMEOUT])
    except ValueError:
        return _problem(400, "after must be an integer and timeout a number of seconds")
    live.seen[sidecar] = time.time()
    # A new sidecar changes everyone's rate-limit share; the next tick publishes it, once
    # for all who joined since (publishing per join would wake every long-poll per join:
    # n joins, n x n answers; bench/fleet.py measured it).
    live.polling[sidecar] = live.polling.get(sidecar, 0) + 1
    try:
        if live.effective is None or live.effective.version == after:
            with contextlib.suppress(TimeoutError):  # not wait_for: it can eat a cancel
                async with asyncio.timeout(timeout):
                    await live.changed.wait()
    finally:
        live.polling[sidecar] -= 1
        live.seen[sidecar] = time.time()
    current = hub.rollouts.get((request.match_info["namespace"], request.match_info["name"]))
    if current is None:
        return _problem(404, "the LLMRollout was deleted")
    if current.effective is None or current.effective.version == after:
        return web.Response(status=304)
    return web.Response(body=current.effective_json, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    live, sidecar = await _caller(request)
    try:
        report = WindowReport.model_validate_json(await request.read())
    except ConnectionResetError:
        return _problem(400, "connection lost while reading the report")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _problem(400, f"bad window report: {where}: {first['msg']}")
    try:
        request.app[HUB].report(live, report.model_copy(update={"sidecar": sidecar}), time.time())
    except Implausible as error:
        log.warning("pod %s: %s", sidecar, error)
        return _problem(400, f"bad window report: {error}")
    return web.Response(status=204)


async def allowance(request: web.Request) -> web.Response:
    live, sidecar = await _caller(request)
    try:
        ask = AllowanceRequest.model_validate_json(await request.read())
    except ValidationError as error:
        return _problem(400, f"bad allowance request: {error.errors()[0]['msg']}")
    if ask.lease_id and not ask.report_id:
        return _problem(400, "a report on a lease needs a reportId (unique per report)")
    hub, now = request.app[HUB], time.time()
    live.seen[sidecar] = now
    kept = Decimal(0)
    if ask.lease_id:
        try:
            settled = live.ledger.settle(
                sidecar, ask.lease_id, ask.spent_usd, ask.keep_usd, now, ask.report_id
            )
        except NotYours as error:
            log.warning("pod %s settled a lease not its own: %s", sidecar, error)
            return _problem(403, f"{error}: a pod settles only leases granted to it")
        if settled.over > 0:
            log.warning(
                "pod %s reported %s USD under lease %s beyond what it held; booked %s",
                sidecar, ask.spent_usd, digest(ask.lease_id)[:8], settled.booked,
            )  # fmt: skip
        kept = settled.kept
    if ask.want_slice:
        grant = live.ledger.grant(sidecar, now, hub.connected_count(live, now))
    else:
        grant = Grant(lease_id="", slice_usd=Decimal(0), ttl_seconds=live.ledger.ttl_seconds)
    grant = grant.model_copy(update={"kept_usd": kept})
    return web.json_response(text=grant.model_dump_json(by_alias=True))


def build_app(hub: Hub, authenticator: Authenticator, max_timeout: float = 30.0) -> web.Application:
    app = web.Application()
    app[HUB], app[AUTH], app[MAX_TIMEOUT] = hub, authenticator, max_timeout
    base = "/v1/namespaces/{namespace}/llmrollouts/{name}"
    app.router.add_get(base + "/config", config)
    app.router.add_post(base + "/stats", stats)
    app.router.add_post(base + "/allowance", allowance)
    app.router.add_get("/readyz", ready)
    return app


async def ready(request: web.Request) -> web.Response:
    """The readiness probe: only the active replica is ready, so only it gets sidecars."""
    if request.app[HUB].active:
        return web.json_response({"active": True})
    return web.json_response({"active": False}, status=503)
