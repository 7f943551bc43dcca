"""Manage the model server: python -m lib.serving status | start | stop | logs.

`start` launches the server detached (pid, log and access key under the run dir) and waits until it
serves the champion; `start --foreground` runs it in this terminal. `status` shows what is served,
`logs` the end of the server log, `stop` ends it (the prediction log is flushed first).
"""

from __future__ import annotations

import argparse
import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import ConfigError, load_settings
from lib.fileio import tail_lines
from lib.logs import setup_logging
from lib.registry import RegistryError, require_champion
from lib.serving import service
from lib.serving.client import EndpointError, ServingClient, endpoint, log_path
from lib.serving.loader import ServingError


def _status(settings) -> int:  # settings: Settings
    try:
        ep = endpoint(settings)
    except EndpointError as exc:
        print(f"not running: {exc}")
        return 1
    with ServingClient(ep, timeout=5) as client:
        version = client.version()
    print(f"url       : {ep.url}")
    print(f"pid       : {ep.pid} (since {ep.state.started_at})")
    print(f"auth      : {'on, key in ' + str(settings.access_key_file) if ep.key else 'OFF'}")
    print(f"model     : {version['model_name']} v{version['model_version']} (run {version['run_id']})")
    print(f"snapshot  : {version['iceberg_snapshot_id'] or '-'}")
    print(f"loaded at : {version['loaded_at']}")
    print(f"log       : {ep.state.log_file}")
    return 0


def _logs(settings, lines: int) -> int:  # settings: Settings
    path = log_path(settings)
    if not path.is_file():
        print(f"error: no server log at {path}: run 04_api_deployment.py first", file=sys.stderr)
        return 1
    for line in tail_lines(path, lines):
        print(line)
    return 0


def build_parser() -> ArgumentParser:
    """`status`, `start`, `stop`, `logs`; usage errors exit 64."""
    parser = ArgumentParser(
        prog="python -m lib.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="what is served, where, since when")
    start = sub.add_parser("start", help="start the server for the champion version")
    start.add_argument("--foreground", action="store_true", help="run in this terminal (Ctrl-C stops)")
    start.add_argument("--no-auth", action="store_true", help="serve without an access key (explicit opt-out)")
    start.add_argument(
        "--watch", type=float, default=None, metavar="SECONDS",
        help="poll the champion alias and hot-swap when it moves (default: SERVE_WATCH_SECONDS)",
    )  # fmt: skip
    start.add_argument(
        "--settings-file", default=None, help="serving settings from a JSON file (written by the launcher)"
    )
    sub.add_parser("stop", help="stop the server (flushes the prediction log)")
    logs = sub.add_parser("logs", help="print the end of the server log")
    logs.add_argument("-n", "--lines", type=int, default=50)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start, stop, or inspect the model server; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args), fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        if args.command == "status":
            return _status(settings)
        if args.command == "logs":
            return _logs(settings, args.lines)
        if args.command == "stop":
            pid = service.stop(settings)
            print(f"stopped server pid {pid}" if pid else "no server was running")
            return 0
        settings = service.apply_settings_file(settings, args.settings_file)
        champion = require_champion(settings)
        if args.foreground:
            service.serve(settings, no_auth=args.no_auth, watch_seconds=args.watch)
            return 0
        ep = service.start_detached(
            settings, no_auth=args.no_auth, watch_seconds=args.watch, expect_version=champion.version
        )
        print(f"serving {champion.name} v{champion.version} at {ep.url} (pid {ep.pid}); log {ep.state.log_file}")
        return 0
    except (ConfigError, RegistryError, ServingError, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
