"""`llm-rollout-operator`: runs kopf with the rollout handlers and serves the control channel."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import sys
import threading

import aiohttp
import kopf
from aiohttp import web

from proxy.config.audit import AUDIT_ENV, AuditLog
from proxy.config.telemetry import provider_from_env
from rollout_operator import handlers, peering
from rollout_operator.auth import Authenticator, TokenReviewAuthenticator
from rollout_operator.control import build_app
from rollout_operator.hub import Hub
from rollout_operator.kube import KubeClient, KubeError
from rollout_operator.metrics import add_metrics_route
from rollout_operator.webhook import bootstrap
from rollout_operator.webhook.server import WebhookSettings

#: Connections the control channel's socket queues before it accepts them (the kernel caps
#: it at net.core.somaxconn). aiohttp's default of 128 overflowed when a fleet connected at
#: once: 1,000 sidecars starting together, or reconnecting after an operator restart, lost
#: handshakes and waited for TCP's retransmits; 361 of them 20 s and more (bench/fleet.py).
CONTROL_BACKLOG = 4096


class Operator:
    """The operator in-process: kopf plus the control channel; tests run it against kmock."""

    def __init__(
        self,
        *,
        namespaces: list[str] | None = None,
        control_host: str = "0.0.0.0",
        control_port: int = 8090,
        tick: float = 1.0,
        max_poll_seconds: float = 30.0,
        sidecar_ttl: float = 60.0,
        authenticator: Authenticator | None = None,
        peering: str | None = None,
        peering_lifetime: int = 15,
        liveness: str | None = None,
        webhook: WebhookSettings | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.namespaces = namespaces or []
        self.control_host, self.control_port = control_host, control_port
        self.tick = tick
        self.max_poll_seconds = max_poll_seconds
        self.hub = Hub(sidecar_ttl=sidecar_ttl)
        if audit is not None:
            self.hub.audit = audit
        exporting = provider_from_env("llm-rollout-operator")
        self.tracing = None if exporting is None else exporting[0]
        if self.tracing is not None:
            self.hub.tracer = self.tracing.get_tracer("llm-rollout-operator")
        self.authenticator = authenticator
        self.peering, self.liveness, self.webhook = peering, liveness, webhook
        self.peering_lifetime = peering_lifetime
        # kopf pauses every peer but the highest-priority one, and lets equal priorities
        # all run (with a warning); a random priority per process makes exactly one active.
        self.priority = random.SystemRandom().randint(1, 2**31 - 1)
        # Our own name in the peering object, so that `/readyz` can find our entry.
        pod = os.environ.get("POD_NAME") or socket.gethostname()
        self.identity = f"{pod}-{os.getpid()}-{secrets.token_hex(4)}"
        self.hub.active = peering is None  # a peer is standby until the election says not
        self._watcher: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._webhook_runner: web.AppRunner | None = None
        self._client: KubeClient | None = None
        self._reviewer: TokenReviewAuthenticator | None = None  # its pod watches end with us
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The operator's HTTP client for Prometheus queries (opened on first use)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _start_control(self) -> None:
        authenticator = self.authenticator
        if authenticator is None:
            self._client = await KubeClient.connect()
            authenticator = self._reviewer = TokenReviewAuthenticator(self._client)
            self.hub.on_namespace = self._reviewer.pods.follow
            for namespace, _ in self.hub.rollouts:  # those it learnt of before it listened
                self._reviewer.pods.follow(namespace)
        app = build_app(self.hub, authenticator, self.max_poll_seconds)
        add_metrics_route(app, self.hub)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.control_host, self.control_port,
                           reuse_address=True, backlog=CONTROL_BACKLOG)  # fmt: skip
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.control_port = int(sockets[0].getsockname()[1])
        logging.getLogger("llm_rollout.operator").info(
            "control channel listening on %s:%d", self.control_host, self.control_port
        )
        if self.webhook is not None:  # stateless: every replica serves it, paused or not
            self._client = self._client or await KubeClient.connect()
            self._webhook_runner = await bootstrap.start(self._client, self.webhook, self.hub.audit)
        if self.peering is not None:
            self._client = self._client or await KubeClient.connect()
            self._watcher = asyncio.create_task(self._watch_peering(self._client, self.peering))
        self.hub.started.set()

    def _peering_paths(self, name: str) -> list[str]:
        if not self.namespaces:
            return [f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}"]
        return [f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings/{name}" for ns in self.namespaces]

    async def _watch_peering(self, client: KubeClient, name: str) -> None:
        """Follow the election kopf runs, for readiness and the control channel.

        Polled (one GET a second per replica), not watched: a missed watch event would
        leave a replica ready or refusing until the next one.
        """
        log = logging.getLogger("llm_rollout.operator")
        while True:
            try:
                objects = [await client.request("GET", path) for path in self._peering_paths(name)]
                active = all(
                    peering.is_active(obj.get("status") or {}, self.identity, self.priority)
                    for obj in objects
                )
            except (KubeError, OSError) as error:
                log.warning("cannot read the peering object %r (%s): standing by", name, error)
                active = False
            if active != self.hub.active:
                log.info("this replica is now %s", "active" if active else "the standby")
                if active:
                    self.hub.active = True
                else:
                    self.hub.stand_by()
            await asyncio.sleep(1.0)

    async def _stop_control(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for rollout in self.hub.rollouts.values():
            rollout.changed.set()  # release the long-polls
        if self._runner is not None:
            await self._runner.cleanup()
        if self._webhook_runner is not None:
            await self._webhook_runner.cleanup()
        if self._reviewer is not None:
            await self._reviewer.close()
        if self._client is not None:
            await self._client.close()
        if self._session is not None:
            await self._session.close()
        if self.tracing is not None:  # export what is buffered (blocking I/O)
            await asyncio.to_thread(self.tracing.shutdown)

    async def run(self, stop_flag: asyncio.Event | threading.Event | None = None) -> None:
        registry = kopf.OperatorRegistry()
        handlers.register(
            registry,
            self.hub,
            tick=self.tick,
            on_startup=self._start_control,
            on_cleanup=self._stop_control,
            session=self.session,
        )
        settings = kopf.OperatorSettings()
        # How long a replica that stopped heartbeating (SIGKILL, node loss) still holds the
        # election: the standby takes over at most this long after the active one died.
        settings.peering.lifetime = self.peering_lifetime
        await kopf.operator(
            registry=registry,
            settings=settings,
            identity=self.identity if self.peering else None,  # type: ignore[arg-type]  # kopf NewType
            clusterwide=not self.namespaces,
            namespaces=self.namespaces,
            standalone=self.peering is None,
            peering_name=self.peering,
            priority=self.priority if self.peering else None,
            liveness_endpoint=self.liveness,
            stop_flag=stop_flag,
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="llm-rollout-operator",
        description="Walks LLMRollout steps, judges them from the sidecars' window stats, "
        "rolls back on its own, keeps the cluster budget ledger, and serves the sidecars' "
        "control channel. Credentials: in-cluster ServiceAccount, else KUBECONFIG.",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; default: the whole cluster)",
    )
    parser.add_argument(
        "--control-listen",
        default="0.0.0.0:8090",
        metavar="HOST:PORT",
        help="address of the sidecars' control channel (default %(default)s)",
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often each rollout is advanced (default %(default)s)",
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        help="run as one of several replicas: kopf peering object NAME elects the one active "
        "operator (default: standalone, a single replica)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=15,
        metavar="SECONDS",
        help="with --peering: how long a silent replica keeps the election, so the most "
        "a failover takes (default %(default)s; each replica heartbeats every 5-10 s)",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8091/healthz",
    )
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="append the security audit trail (JSON lines: refused control-channel calls "
        "with the caller, sidecar injections, rollout commands with the requesting user) "
        f"to PATH; default: stdout, or ${AUDIT_ENV}",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, sep, port = args.control_listen.rpartition(":")
    if not sep or not port.isdigit():
        print(
            f"llm-rollout-operator: --control-listen {args.control_listen!r} is not HOST:PORT",
            file=sys.stderr,
        )
        return 2
    operator = Operator(
        namespaces=args.namespace,
        control_host=host or "0.0.0.0",
        control_port=int(port),
        tick=args.tick,
        peering=args.peering,
        peering_lifetime=args.peering_lifetime,
        liveness=args.liveness,
        # The injection webhook, when the Helm chart enables it (LLM_ROLLOUT_WEBHOOK_*).
        webhook=WebhookSettings.from_env(),
        audit=AuditLog.open(args.audit_log, "operator"),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(operator.run())
    return 0
