"""Step 10: score every customer with the champion on Spark and write the ranked call list.

Reads the Iceberg table at its current snapshot (or --snapshot ID), scores every row with the
model `champion` points at (mapInPandas, the model shipped once per executor) and writes the call
list `call_list_<user>` next to the table as one Iceberg snapshot: customer key, probability, rank
(1 = most likely), decile, the call decision, model name and version, source snapshot. Earlier
lists stay readable by time travel.

The decision's cut-off is the profit-optimal one for a cost per call and a value per converted
deposit, chosen on held-out rows the champion did not train on; lift and gains by decile and the
profit curve are logged to the champion's MLflow run, and the cut-off becomes the version tag
`decision_threshold` that the model server uses. --top N --csv PATH exports the head of the list.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import ConfigError, Settings, cli_settings
from lib.economics import CampaignEconomics, EconomicsError
from lib.lake import LakeError
from lib.logs import setup_logging
from lib.registry import RegistryError
from lib.scoring import ScoringError, run_batch_scoring
from lib.training import TrainingError


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    """10's flags; the economics default to the CAMPAIGN_* settings."""
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="10_batch_scoring.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshot", type=int, metavar="ID", help="score the table at this snapshot (default: now)")
    parser.add_argument("--top", type=int, metavar="N", help="with --csv: export only the first N rows by rank")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="export the call list (its top N with --top) as CSV")
    parser.add_argument(
        "--cost-per-call", type=float, default=settings.campaign_cost_per_call, metavar="X",
        help="what one call costs (default: %(default)g, CAMPAIGN_COST_PER_CALL)",
    )  # fmt: skip
    parser.add_argument(
        "--value-per-deposit", type=float, default=settings.campaign_value_per_deposit, metavar="Y",
        help="what one converted term deposit is worth (default: %(default)g, CAMPAIGN_VALUE_PER_DEPOSIT)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr, only the summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Score the table into the call list; print the summary (exit 0) or one error line (exit 1)."""
    settings = cli_settings()
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    if args.top is not None and args.csv is None:
        parser.error("--top needs --csv PATH")
    if args.top is not None and args.top < 1:
        parser.error("--top must be at least 1")
    try:
        economics = CampaignEconomics(args.cost_per_call, args.value_per_deposit)
    except EconomicsError as exc:
        parser.error(str(exc))
    setup_logging(is_verbose(args), level=logging.WARNING if args.quiet else logging.INFO)
    try:
        result = run_batch_scoring(settings, economics, snapshot_id=args.snapshot, top=args.top, csv_path=args.csv)
    except (ConfigError, ScoringError, RegistryError, LakeError, TrainingError, EconomicsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    cut, lift = result.economics.cutoff, result.economics.lift
    print(f"table      : {result.table} @ snapshot {result.source_snapshot_id} ({result.rows:,} rows)")
    print(f"model      : {result.model_name} v{result.model_version} (champion)")
    print(f"economics  : cost {economics.cost_per_call:g} per call, value {economics.value_per_deposit:g} per deposit "
          f"(break-even probability {economics.break_even_probability:.3f})")  # fmt: skip
    print(f"cut-off    : {cut.threshold:.4f} calls {cut.share_called:.1%} of {cut.rows:,} held-out rows "
          f"(snapshot {result.holdout_snapshot_id}) and reaches {cut.recall:.1%} of the subscribers, "
          f"profit {cut.profit:,.0f}")  # fmt: skip
    print(f"lift       : top decile {lift['lift'].iloc[0]:.2f}x, top 3 deciles reach "
          f"{lift['cumulative_gain'].iloc[2]:.1%} of subscribers")  # fmt: skip
    print(f"call list  : {result.call_list} @ snapshot {result.call_list_snapshot_id}")
    print(f"to call    : {result.to_call:,} of {result.rows:,} customers (decision = 1)")
    print(f"logged     : economics/ on the run of v{result.model_version}, tag decision_threshold={cut.threshold:.4f}")
    if result.csv_path is not None:
        print(f"csv        : {result.csv_path} ({result.exported:,} rows)")
    if result.served_threshold is not None:
        print(f"server     : v{result.model_version} now decides at {result.served_threshold:.4f}")
    print(f"seconds    : {result.seconds:.1f} (scoring and the call list's commit {result.scoring_seconds:.1f})")
    print("next       : python -m lib.notebooks 09_model_monitoring_dashboard.ipynb (the gains chart)")
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
