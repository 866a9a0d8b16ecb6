"""The emulated Kubernetes API for `bench.fleet`, in its own process.

kmock's emulator with what kopf needs (`tests/operator/k8s_emulator.py`) and the
TokenReviews the operator's real authenticator sends: a token ``token-<pod>`` is
valid while pod ``<pod>`` exists in the namespace. Its own process so that its CPU
is neither the operator's (measured) nor the simulated fleet's. Prints its URL on
one line, then serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import attrs
import kmock
from kmock._internal import rendering

from tests.operator.k8s_emulator import Emulator, declare, token_review

NS = "fleet"


@attrs.define(kw_only=True)
class FleetEmulator(Emulator):
    """Forgets each request once answered. kmock keeps every request it served so tests
    can assert on them, and matches each new one against that whole history: at a
    fleet's rate (a pod read per sidecar every few seconds) the emulator slowed down
    without bound (16 ms a request after a minute, then seconds) and became the thing
    measured instead of the operator."""

    async def _handle(self, request: rendering.Request) -> Any:
        self._requests.clear()
        self._requests.append(request)
        return await super()._handle(request)


async def serve() -> None:
    async with FleetEmulator() as k8s, kmock.Server(k8s) as server:
        declare(k8s)
        k8s["post /apis/authentication.k8s.io/v1/tokenreviews"] << token_review(k8s, NS)
        print(str(server.url).rstrip("/"), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # the parent closes stdin (or dies): stop


if __name__ == "__main__":
    asyncio.run(serve())
