"""Model monitoring from the command line.

python -m lib.monitoring check [--window-hours H | --last N] [--trigger-retrain]
    evaluate the alert rules on the champion's most recent window of event time (only the
    requests the registry's champion served: after a redeploy, "no traffic for vN yet" until it
    serves one); exit 0 when every rule is ok or has no data, 2 when one fires (after starting
    the "Retrain Models" chain when asked), 1 on an error or a failed retraining chain, 64 on a usage error.
python -m lib.monitoring report [--window-hours H | --last N] [--freq 1D]
    render the dashboard (PNG figures + self-contained HTML) into settings.reports_dir.
python -m lib.monitoring exporter [--host 127.0.0.1] [--port N] [--window-hours H]
    serve the monitoring results as Prometheus metrics on http://HOST:PORT/metrics, computed at
    each scrape (port from MONITORING_EXPORTER_PORT, default 9808; 0 picks a free port).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from lib.cliargs import EX_ALERT, EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import Settings, cli_settings
from lib.logs import setup_logging
from lib.monitoring import MonitoringError
from lib.monitoring.alerts import format_alerts
from lib.monitoring.performance import DEFAULT_FREQ, DEFAULT_WINDOW_HOURS
from lib.monitoring.report import MonitoringReport, build_report

if TYPE_CHECKING:
    from lib.jobs import ChainResult

log = logging.getLogger("lib.monitoring")

EXIT_FIRING = EX_ALERT
RETRAIN_CHAIN = "Retrain Models"


def trigger_retrain(settings: Settings) -> ChainResult:
    """Start the "Retrain Models" job chain because an alert fired (not because of a schedule)."""
    from lib.jobs import run_chain

    log.info("alert fired: starting the %r job chain", RETRAIN_CHAIN)
    return run_chain(settings, RETRAIN_CHAIN, trigger="alert")


def _add_window_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--window-hours",
        type=float,
        default=None,
        help=f"judge the last H hours of event time (default {DEFAULT_WINDOW_HOURS:g})",
    )
    group.add_argument("--last", type=int, default=None, help="judge the last N predictions instead")


def build_parser() -> ArgumentParser:
    """`check` and `report`; usage errors exit 64 so they never look like 2 = "an alert fired"."""
    parser = ArgumentParser(
        prog="python -m lib.monitoring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="evaluate the alert rules on the recent window")
    _add_window_args(check)
    check.add_argument(
        "--trigger-retrain",
        action="store_true",
        help=f"start the {RETRAIN_CHAIN!r} job chain when a rule fires",
    )
    report_p = sub.add_parser("report", help="render the dashboard (PNG + HTML) into the reports dir")
    _add_window_args(report_p)
    report_p.add_argument("--freq", default=DEFAULT_FREQ, help="time window of the charts (default %(default)s)")
    exporter = sub.add_parser("exporter", help="serve monitoring results as Prometheus metrics")
    exporter.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    exporter.add_argument(
        "--port", type=int, default=None, help="port (default MONITORING_EXPORTER_PORT or 9808; 0 = any free port)"
    )
    exporter.add_argument(
        "--window-hours",
        type=float,
        default=DEFAULT_WINDOW_HOURS,
        help="judge the last H hours of event time at each scrape (default %(default)g)",
    )
    return parser


def _exporter(settings: Settings, args: argparse.Namespace) -> int:
    """Serve /metrics until interrupted; the URL line tells a caller (or a test) where."""
    from lib.monitoring.exporter import build_registry, make_exporter_server

    port = settings.exporter_port if args.port is None else args.port
    try:
        server = make_exporter_server(build_registry(settings, args.window_hours), args.host, port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{port}: {exc}; pick another --port", file=sys.stderr)
        return EX_FAILURE
    host, bound = server.server_address[:2]
    print(f"metrics   : http://{host}:{bound}/metrics", flush=True)
    print(f"model     : {settings.model_name} (window {args.window_hours:g} h of event time)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped   : interrupted")
    finally:
        server.server_close()
    return EX_OK


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from lib.monitoring.dashboard import render_dashboard  # matplotlib only for this command

    report = build_report(settings, window_hours=args.window_hours, last=args.last, freq=args.freq)
    files = render_dashboard(report, settings)
    print(format_alerts(report.alerts))
    print(f"dashboard : {files.html}")
    for path in files.figures.values():
        print(f"figure    : {path}")
    return EX_OK


def _retrain(settings: Settings) -> int:
    """Run the retraining chain after an alert; EX_ALERT when it succeeded, EX_FAILURE otherwise."""
    from lib.jobs import JobError

    try:
        result = trigger_retrain(settings)
    except JobError as exc:
        print(f"error: cannot start the {RETRAIN_CHAIN!r} chain: {exc}", file=sys.stderr)
        return EX_FAILURE
    print(f"retrain   : {result}")
    if not result.ok:
        print(f"error: the {RETRAIN_CHAIN!r} chain failed; see {settings.jobs_log_dir}", file=sys.stderr)
        return EX_FAILURE
    return EXIT_FIRING


def _check(settings: Settings, report: MonitoringReport, trigger: bool) -> int:
    w = report.window
    if report.no_traffic:
        from lib.monitoring.report import no_traffic_message

        message = no_traffic_message(report.model_version)
        print(f"window    : {message} (model {report.model_name}, the registry's champion)")
        print(format_alerts(report.alerts))
        print(f"status    : {message}; no alert can fire")
        return EX_OK
    print(
        f"window    : {w['event_ts'].min():%Y-%m-%d %H:%M} .. {w['event_ts'].max():%Y-%m-%d %H:%M} UTC, "
        f"{len(w):,} predictions, model {report.model_name} v{report.model_version}"
    )
    print(format_alerts(report.alerts))
    if not report.firing:
        print("status    : no alert firing")
        return EX_OK
    print(f"status    : FIRING ({', '.join(a.name for a in report.firing)})")
    if trigger:
        return _retrain(settings)
    print("next      : python -m lib.monitoring check --trigger-retrain (or python 06_retrain.py)")
    return EXIT_FIRING


def main(argv: list[str] | None = None) -> int:
    """Run `check`, `report` or `exporter`; a MonitoringError is one `error:` line and exit 1, never the alert code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "exporter" and args.window_hours <= 0:
        parser.error(f"--window-hours {args.window_hours:g} must be positive")
    setup_logging(is_verbose(args))
    settings = cli_settings()
    if args.command == "exporter":
        return _exporter(settings, args)
    try:
        if args.command == "report":
            return _report(settings, args)
        report = build_report(settings, window_hours=args.window_hours, last=args.last)
    except MonitoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    return _check(settings, report, args.trigger_retrain)


if __name__ == "__main__":
    sys.exit(main())
