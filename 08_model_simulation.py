"""Step 8: simulate production traffic against the deployed model, then report the ground truth.

Sends --requests real HTTP requests (one record each, with the endpoint's access key) to the
running model server, using records from the latest new batch (--source batch, from
05_newbatch.py), a held-out slice of the table (--source table) or a generated drift scenario
(--drift). Each request carries an event time spread over --days of simulated time, starting
after the newest event already logged, so a rerun after a redeploy continues the time axis.

Afterwards the true outcome of every answered request is reported through POST /feedback. To
show a model degrading, a share of those labels is flipped, rising from --flip-start to
--flip-end over the run. Prints requests, errors, client-side latency and accuracy per day.
Exit 1 when no endpoint is running or no request got an answer.
"""

from __future__ import annotations

import argparse
import sys

from lib.batches import DRIFT_SCENARIOS, drift_help
from lib.cliargs import ArgumentParser, is_verbose
from lib.config import cli_settings
from lib.logs import setup_logging
from lib.session import run_main
from lib.simulation import SOURCES, SimulationConfig, SimulationError, format_summary, run_simulation


def build_parser() -> ArgumentParser:
    defaults = SimulationConfig()
    parser = ArgumentParser(
        prog="08_model_simulation.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=defaults.requests, help="requests to send (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="parallel requests (%(default)s)")
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default=defaults.source,
        help="latest new batch or a held-out slice of the table (%(default)s)",
    )
    parser.add_argument(
        "--drift",
        choices=[d for d in DRIFT_SCENARIOS if d != "none"],
        default=None,
        help=f"send a generated drift batch instead: {drift_help()}",
    )
    parser.add_argument(
        "--flip-start",
        type=float,
        default=defaults.flip_start,
        help="share of reported labels flipped at the start (%(default)s)",
    )
    parser.add_argument(
        "--flip-end",
        type=float,
        default=defaults.flip_end,
        help="share of reported labels flipped at the end (%(default)s)",
    )
    parser.add_argument("--days", type=float, default=defaults.days, help="simulated days (%(default)s)")
    parser.add_argument(
        "--label-delay-hours",
        type=float,
        default=defaults.label_delay_hours,
        help="event-time delay of the ground truth (%(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (%(default)s)")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds per request (%(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    config = SimulationConfig(
        requests=args.requests,
        concurrency=args.concurrency,
        source=args.source,
        drift=args.drift,
        flip_start=args.flip_start,
        flip_end=args.flip_end,
        days=args.days,
        label_delay_hours=args.label_delay_hours,
        seed=args.seed,
        timeout_s=args.timeout,
    )
    try:
        result = run_simulation(settings, config)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in format_summary(result):
        print(line)
    if not result.ok:
        print(f"error: none of the {len(result.replies)} requests was answered", file=sys.stderr)
        return 1
    if result.feedback_accepted == 0:
        print("error: the server accepted none of the ground-truth labels", file=sys.stderr)
        return 1
    print("next      : open 09_model_monitoring_dashboard.ipynb / python -m lib.monitoring check")
    return 0


if __name__ == "__main__":
    run_main(main)
