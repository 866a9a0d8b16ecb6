"""The data port's last line: any failure still answers in the client's dialect.

A bug, a recursion limit or an aiohttp error page would otherwise reach the SDK as
aiohttp's plain-text 500 ("Server got itself in trouble"), which no SDK can read. This
middleware turns any exception escaping a handler into the dialect's error object with
the request id, and logs it once with its stack trace (never the body: prompts stay out
of logs).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.dialects import ErrorKind, guess_dialect
from proxy.server.attempts import error_response

log = logging.getLogger("llm_rollout.request")


@web.middleware
async def dialect_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise  # the client went away: nothing to answer
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kind, message = ErrorKind.for_status(error.status), error.reason
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    except Exception:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        log.exception("unexpected failure serving %s (request %s)", request.path, request_id)
        kind = ErrorKind.INTERNAL
        message = f"llm-rollout failed on this request (request id {request_id}); it is logged"
    dialect = guess_dialect(request.path, dict(request.headers))
    headers = {"x-request-id": request_id, "x-llm-backend": "none"}
    return error_response(dialect, kind, message, headers)
