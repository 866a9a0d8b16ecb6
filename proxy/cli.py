"""`llm-rollout-proxy`: the sidecar's command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from proxy.config import ConfigError, load_file
from proxy.config.audit import AUDIT_ENV, AuditLog
from proxy.server.control import ControlClient
from proxy.server.runtime import PortLimits
from proxy.server.serve import Address, Sidecar

DESCRIPTION = """\
The llm-rollout sidecar: an LLM proxy on the pod's loopback. Apps point their
OpenAI / Anthropic / Gemini SDK base URL at it; it routes each request to a real
provider or to the mock by the rollout's weight, and answers in the SDK's own
wire format, streams included.
"""

EPILOG = """\
environment:
  LLM_ROLLOUT_FORCE_MOCK=true   send every request to the mock (kill switch)
  LLM_ROLLOUT_SECRETS_DIR=DIR   where apiKey.secretRef files are mounted
                                (default /var/run/secrets/llm-rollout)
  LLM_ROLLOUT_AUDIT_LOG=PATH    where the audit trail goes (as --audit-log)
  OTEL_EXPORTER_OTLP_ENDPOINT   turns tracing on (OTLP/HTTP); other OTEL_* as standard
"""


def _address(text: str) -> Address:
    try:
        return Address.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="llm-rollout-proxy",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="LLMRollout YAML (a whole LLMRollout document or just its spec); "
        "watched: valid changes apply live, invalid ones are refused and logged",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8100",
        type=_address,
        metavar="HOST:PORT",
        help="data port the apps' SDKs call (default %(default)s: loopback only, the pod's "
        "private door)",
    )
    parser.add_argument(
        "--admin-listen",
        default="0.0.0.0:8101",
        type=_address,
        metavar="HOST:PORT",
        help="admin port with /healthz, /readyz, /metrics and /config (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        default=10 * 1024 * 1024,
        type=int,
        metavar="N",
        help="largest request body accepted; larger gets 413 in the client's dialect "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        default=30.0,
        type=float,
        metavar="SECONDS",
        help="a request body not in full within this gets 408 in the client's dialect and "
        "its connection closed (default %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        default=30.0,
        type=float,
        metavar="SECONDS",
        help="a connection that has not sent a whole request's headers, or sits idle between "
        "requests, is closed after this (default %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        default=1024,
        type=int,
        metavar="N",
        help="connections open at once on each port; more are closed at once (default %(default)s)",
    )
    parser.add_argument(
        "--admin-expose-config",
        action="store_true",
        help="serve /config on the admin port to any address, not only to loopback",
    )
    control = parser.add_argument_group("operator control channel (optional)")
    control.add_argument(
        "--control-url",
        metavar="URL",
        help="follow the llm-rollout operator at URL (e.g. http://llm-rollout-operator:8090): "
        "long-poll the rollout's config, push window stats, spend the rollout's daily cap only "
        "from budget slices the operator grants; --config is the start-up config",
    )
    control.add_argument("--rollout", metavar="NS/NAME", help="the LLMRollout to follow")
    control.add_argument(
        "--token-file",
        type=Path,
        default=Path("/var/run/secrets/llm-rollout/token"),
        metavar="PATH",
        help="projected ServiceAccount token (audience llm-rollout) (default %(default)s)",
    )
    parser.add_argument(
        "--budget-ledger",
        type=Path,
        metavar="FILE",
        help="standalone mode: keep budget spend in FILE so it survives restarts (written "
        "atomically); without it spend is kept in memory only",
    )
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="append the security audit trail (JSON lines: keys loaded/rotated/bad as "
        "fingerprints, configs applied/rejected, kill switch, budget exhausted) to PATH; "
        f"default: stdout, or ${AUDIT_ENV}; logs go to stderr",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default %(default)s); prompts and keys are never logged",
    )
    args = parser.parse_args(argv)
    if (args.control_url is None) != (args.rollout is None):
        parser.error("--control-url and --rollout go together")
    return args


async def run(args: argparse.Namespace) -> None:
    spec = load_file(args.config)
    sidecar = Sidecar(
        spec,
        args.config,
        listen=args.listen,
        admin_listen=args.admin_listen,
        max_body_bytes=args.max_body_bytes,
        ledger_path=args.budget_ledger,
        limits=PortLimits(
            body_timeout=args.body_timeout,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            expose_config=args.admin_expose_config,
        ),
        audit=AuditLog.open(args.audit_log, "sidecar"),
    )
    await sidecar.start()
    # What start-up built (config, SDK and library modules) lives as long as the process:
    # frozen, the garbage collector no longer scans it. Spans waiting for export survive
    # young collections and so trigger older ones, which scanned all of it: ~60 us CPU
    # per request with tracing at 100 % (`make bench`); no effect when nothing waits.
    gc.collect()
    gc.freeze()
    client = None
    if args.control_url:
        client = ControlClient(
            sidecar.runtime, args.control_url, args.rollout, args.token_file,
            sidecar=os.environ.get("POD_NAME") or socket.gethostname(),
        )  # fmt: skip
        await client.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sidecar.stop()  # first: calls in flight settle, so the client returns whole slices
    if client is not None:
        await client.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is pinned, but not on Windows
        pass
    try:
        asyncio.run(run(args))
    except ConfigError as error:
        print(f"llm-rollout-proxy: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"llm-rollout-proxy: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0
