"""Step 7: redeploy the retrained model with a quality gate, or roll back.

Registers the best run of the retrain experiment (06_retrain.py) as `challenger`, scores it and
the serving `champion` on the same held-out rows (the test split of the table's current Iceberg
snapshot, minus every row either version was trained on) and promotes it only if it is not worse
by more than --tolerance on the selection metric (--force overrides; recorded as a tag on the
version). Promotion moves `champion` to the new version and `previous` to the old one, hot-swaps
the running server and checks /version; if the server refuses the new version, the promotion is
undone. --rollback moves `champion` back to `previous` and hot-swaps.

Exit codes: 0 done, 1 missing prerequisite or error, 3 challenger rejected (nothing changed).
"""

from __future__ import annotations

import argparse
import logging
import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import ConfigError, Settings, cli_settings
from lib.lake import LakeError
from lib.logs import setup_logging
from lib.registry import DEFAULT_METRIC, GateRejected, holdout_rows
from lib.serving import deploy
from lib.serving.deploy import DeployError
from lib.session import run_main
from lib.training import TrainingError

EXIT_REJECTED = 3


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="07_api_redeployment.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="selection metric (default: %(default)s)")
    parser.add_argument(
        "--tolerance", type=float, default=settings.gate_tolerance,
        help="how much worse than the champion the challenger may be (default: %(default)s, GATE_TOLERANCE)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="promote even if the gate rejects (tagged)")
    parser.add_argument("--rollback", action="store_true", help="move champion back to the previous version")
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    if args.tolerance < 0:
        parser.error("--tolerance must not be negative")
    setup_logging(is_verbose(args), level=logging.WARNING)
    try:
        if args.rollback:
            result = deploy.rollback(settings)
        else:

            def holdout(versions):  # read only once a comparison is due: pyiceberg, or Spark for big tables
                return holdout_rows(None, settings, versions)

            result = deploy.redeploy(settings, holdout, metric=args.metric, tolerance=args.tolerance, force=args.force)
    except GateRejected as exc:
        print(f"rejected  : {exc}", file=sys.stderr)
        print(f"champion  : unchanged (v{exc.result.champion_version}); "
              f"v{exc.result.challenger_version} stays @challenger", file=sys.stderr)  # fmt: skip
        return EXIT_REJECTED
    except (ConfigError, LakeError, TrainingError, *DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.gate is not None:
        print(f"gate      : {result.gate.describe()}")
        if not result.gate.passed:
            print("            promoted anyway (--force, tagged promotion_forced=true)")
    if not result.promotion.changed:
        print(f"unchanged : v{result.champion.version} already is the champion")
    for line in deploy.format_versions([("before", result.promotion.before), ("after", result.champion)]):
        print(f"  {line}")
    print(f"server    : {result.action}, {result.endpoint.url} serves v{result.champion.version}")
    print("next      : python 08_model_simulation.py" + ("" if args.rollback else "  (undo: --rollback)"))
    return 0


if __name__ == "__main__":
    run_main(main)
