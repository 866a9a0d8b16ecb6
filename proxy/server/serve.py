"""Running the sidecar: both ports, the config watcher, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from proxy.config import LLMRolloutSpec
from proxy.config.audit import AuditLog
from proxy.server.admin import READY, build_admin_app
from proxy.server.data import build_data_app
from proxy.server.runtime import PortLimits, Runtime
from proxy.server.tasks import cancel_and_wait
from proxy.server.watch import watch_config

log = logging.getLogger("llm_rollout")


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:8100)")
        return cls(host.strip("[]") or "0.0.0.0", int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Sidecar:
    """Both servers of one sidecar; `start` returns once they listen."""

    def __init__(
        self,
        spec: LLMRolloutSpec,
        config_path: Path | None,
        *,
        listen: Address,
        admin_listen: Address,
        max_body_bytes: int = 10 * 1024 * 1024,
        watch_interval: float = 1.0,
        ledger_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        limits: PortLimits | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """`clock`: monotonic seconds for breakers, rate limits and deadlines (tests pass
        a fake one to move time without waiting)."""
        self.runtime = Runtime(
            spec,
            str(config_path or "<memory>"),
            max_body_bytes=max_body_bytes,
            ledger_path=ledger_path,
            clock=clock,
            limits=limits,
            audit=audit,
        )
        self.config_path = config_path
        self.listen = listen
        self.admin_listen = admin_listen
        self.watch_interval = watch_interval
        self.data_app = build_data_app(self.runtime)
        self.admin_app = build_admin_app(self.runtime)
        self._runners: list[web.AppRunner] = []
        self._watcher: asyncio.Task[None] | None = None
        self.data_port = 0
        self.admin_port = 0

    async def start(self) -> None:
        self.admin_port = await self._serve(self.admin_app, self.admin_listen, "admin")
        self.data_port = await self._serve(self.data_app, self.listen, "data")
        if self.config_path is not None:
            self._watcher = asyncio.create_task(
                watch_config(self.runtime, self.config_path, self.watch_interval)
            )
        self.admin_app[READY]["data"] = True
        log.info(
            "llm-rollout sidecar ready: data http://%s:%d admin http://%s:%d config version %d",
            self.listen.host, self.data_port, self.admin_listen.host, self.admin_port,
            self.runtime.snapshot.version,
        )  # fmt: skip

    async def _serve(self, app: web.Application, address: Address, name: str) -> int:
        limits = self.runtime.limits
        # lingering_time: after a refused body (413, 408) aiohttp reads on what the client
        # still sends for up to this long before closing; its 10 s would let a slow body
        # hold the connection that long after --body-timeout.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_timeout,
            lingering_time=1.0,
        )  # fmt: skip
        await runner.setup()
        server = runner.server
        assert server is not None
        self.runtime.metrics.connections.labels(name).set_function(
            lambda: float(len(server.connections))
        )
        site = CappedSite(runner, address.host, address.port, limit=limits.max_connections,
                          label=name)  # fmt: skip
        await site.start()
        self._runners.append(runner)
        return site.port

    async def stop(self) -> None:
        if self._watcher is not None:
            await cancel_and_wait([self._watcher])
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.runtime.budget.flush()
        if self.runtime.tracing is not None:  # export what is buffered (blocking I/O)
            await asyncio.to_thread(self.runtime.tracing.shutdown)


class _Refused(asyncio.Protocol):
    """A connection over `--max-connections`: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class CappedSite(web.TCPSite):
    """A TCP site that accepts at most `limit` connections at once.

    aiohttp has no such limit; without one, a client opening thousands of idle
    connections takes every file descriptor of the pod. Over the limit a connection
    is closed at once (and logged, once per burst), before any byte is read."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, limit: int,
                 label: str) -> None:  # fmt: skip
        super().__init__(runner, host, port, reuse_address=True)
        self.limit, self.label = limit, label
        self._warned = False

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None

        def accept() -> asyncio.Protocol:
            if len(server.connections) < self.limit:
                self._warned = False
                return server()
            if not self._warned:
                log.warning("%s port: %d connections open, closing new ones "
                            "(--max-connections)", self.label, self.limit)  # fmt: skip
                self._warned = True
            return _Refused()

        self._server = await asyncio.get_running_loop().create_server(
            accept, self._host, self._port, backlog=self._backlog, reuse_address=True
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
