"""Batch scoring behind 10_batch_scoring.py: the ranked call list, scored on Spark, kept as an Iceberg table.

The `champion` model scores every row of the table at one snapshot on the executors
(`lib.scoring.scorer`: one pass that hashes, encodes and scores, then the ranking of the scored pairs)
into the call list `<catalog>.<namespace>.call_list_<user>`, rewritten by every run as ONE Iceberg
snapshot so each earlier list stays readable by time travel (`lib.scoring.table`).
The cut-off comes from the campaign's economics (`lib.economics`) on held-out rows the champion did
not train on (`lib.registry.holdout_rows`); it is logged to the champion's run and set as the
version tag `decision_threshold`, which the model server uses for its decision
(`lib.scoring.economics_log`).

This module runs the step; the names callers use are re-exported here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config import Settings
from lib.economics import CampaignEconomics, EconomicsReport
from lib.scoring.economics_log import (
    ECONOMICS_DIR,
    ECONOMICS_JSON,
    GAINS_PNG,
    THRESHOLD_TAG,
    campaign_economics,
    load_economics,
    log_economics,
)
from lib.scoring.scorer import (
    ChampionModel,
    build_call_list,
    check_features,
    load_champion,
    ship_code,
    with_customer_key,
)
from lib.scoring.table import (
    CALL_LIST_COLUMNS,
    KEY,
    LOCK_TIMEOUT_S,
    ScoringError,
    call_list_ident,
    call_list_name,
    call_list_snapshot_id,
    call_list_snapshots,
    export_top,
    read_call_list,
    write_call_list,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "CALL_LIST_COLUMNS", "ECONOMICS_DIR", "ECONOMICS_JSON", "GAINS_PNG", "KEY",
    "LOCK_TIMEOUT_S", "THRESHOLD_TAG", "ChampionModel", "ScoringError", "ScoringResult", "SourceTable",
    "build_call_list", "call_list_ident", "call_list_name", "call_list_snapshot_id", "call_list_snapshots",
    "campaign_economics", "check_features", "export_top", "load_champion", "load_economics", "log_economics",
    "read_call_list", "read_source", "run_batch_scoring", "score_customers", "ship_code", "with_customer_key",
    "write_call_list",
]  # fmt: skip

log = logging.getLogger(__name__)


# --- the whole step ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringResult:
    """What one batch-scoring run read, decided and wrote, for the script's summary and its MLflow run."""

    table: str
    source_snapshot_id: int
    rows: int
    model_name: str
    model_version: str
    economics: EconomicsReport
    holdout_snapshot_id: int
    call_list: str
    call_list_snapshot_id: int
    to_call: int
    exported: int
    csv_path: Path | None
    seconds: float
    scoring_seconds: float  # the one scoring pass, the ranking and the call list's commit
    served_threshold: float | None = None  # what a running server decides at now (None: none serves it)


@dataclass(frozen=True)
class SourceTable:
    """The customer table at one snapshot, checked against the model: what gets scored."""

    frame: DataFrame
    snapshot_id: int
    rows: int


def read_source(
    spark: SparkSession, settings: Settings, champion: ChampionModel, snapshot_id: int | None = None
) -> SourceTable:
    """The table at `snapshot_id` (current when None); refuses a model/table mismatch and an empty table.

    The snapshot and its row count come from the Iceberg metadata when pyiceberg reads the catalog
    (`_snapshot_rows`): no Spark job lists the snapshots or counts the rows. Otherwise Spark does both.
    """
    from lib.lake import current_snapshot_id, read_known_snapshot, read_table

    known = _snapshot_rows(settings, snapshot_id)
    if known is None:
        source = snapshot_id if snapshot_id is not None else current_snapshot_id(spark, settings)
        table = read_table(spark, settings, snapshot_id=source)
        rows = None
    else:
        source, rows = known
        table = read_known_snapshot(spark, settings, source)
    where = f"{settings.table_ident} at snapshot {source}"
    check_features(table, champion.columns, where, champion.info.version)
    rows = table.count() if rows is None else rows
    if rows == 0:
        raise ScoringError(f"{where} has no rows: load it (01_write_to_dl.py) or append customers (05_newbatch.py)")
    return SourceTable(frame=table, snapshot_id=int(source), rows=rows)


def _snapshot_rows(settings: Settings, snapshot_id: int | None) -> tuple[int, int | None] | None:
    """(snapshot id, rows) from the table's metadata, read by pyiceberg; None when Spark must answer.

    The rows are the snapshot summary's `total-records` when it has no delete files (else None:
    Spark counts). None where `lib.lake.reader.metadata_table` leaves the answer to Spark.
    """
    from lib.lake.reader import metadata_table, table_snapshot

    table = metadata_table(settings)
    if table is None:
        return None
    snap = table_snapshot(settings, table, snapshot_id)
    summary = snap.summary.additional_properties if snap.summary is not None else {}
    deletes = [summary.get(k, "0") for k in ("total-delete-files", "total-position-deletes", "total-equality-deletes")]
    rows = summary.get("total-records")
    exact = rows is not None and all(d == "0" for d in deletes)
    return int(snap.snapshot_id), int(rows) if exact else None


def score_customers(
    spark: SparkSession,
    settings: Settings,
    champion: ChampionModel,
    source: SourceTable,
    threshold: float,
    economics: CampaignEconomics,
) -> int:
    """Score `source` into the call list (one Iceberg commit); returns the call list's new snapshot."""
    call_list = build_call_list(spark, source.frame, champion, source.snapshot_id, source.rows, threshold, economics)
    properties = {
        "source-table": settings.table_ident,
        "source-snapshot-id": str(source.snapshot_id),
        "model-name": champion.info.name,
        "model-version": champion.info.version,
    }
    return write_call_list(spark, settings, call_list, properties)


def run_batch_scoring(
    settings: Settings,
    economics: CampaignEconomics,
    *,
    snapshot_id: int | None = None,
    top: int | None = None,
    csv_path: Path | None = None,
) -> ScoringResult:
    """Step 10: champion → economics (cut-off) → the scored, ranked call list → optional CSV of its top."""
    from concurrent.futures import ThreadPoolExecutor

    from lib.lake import LakeError, spark_session

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="champion") as pool:
        # MLflow's import and the model's load (seconds) run while the JVM starts; the thread touches no Spark
        loading = pool.submit(load_champion, settings)
        try:
            with spark_session(settings) as spark:
                champion = loading.result()
                log.info("model      : %s v%s (champion) loaded", champion.info.name, champion.info.version)
                return _score_and_log(spark, settings, champion, economics, snapshot_id, top, csv_path, start)
        except LakeError:
            loading.result()  # a missing champion is the first thing to fix: its error wins
            raise


def _score_and_log(
    spark: SparkSession,
    settings: Settings,
    champion: ChampionModel,
    economics: CampaignEconomics,
    snapshot_id: int | None,
    top: int | None,
    csv_path: Path | None,
    start: float,
) -> ScoringResult:
    """Step 10 once the champion is loaded and Spark runs: source, economics, call list, MLflow, CSV."""
    source = read_source(spark, settings, champion, snapshot_id)
    log.info("table      : %s @ snapshot %s, %s rows", settings.table_ident, source.snapshot_id, f"{source.rows:,}")
    log.info("economics  : scoring the held-out rows for the cut-off ...")
    # None: the lake picks the engine (pyiceberg, no Spark job, for a table of pandas size)
    report, holdout_snapshot = campaign_economics(None, settings, champion, economics)
    log.info("scoring    : %s rows on %s ...", f"{source.rows:,}", spark.sparkContext.master)
    scoring_start = time.perf_counter()
    list_snapshot = score_customers(spark, settings, champion, source, report.cutoff.threshold, economics)
    scoring_seconds = time.perf_counter() - scoring_start
    log.info("logging    : economics to MLflow, tag %s on v%s", THRESHOLD_TAG, champion.info.version)
    # after the commit: the tag never names a cut-off whose call list failed to be written
    log_economics(settings, champion.info, report, holdout_snapshot)
    served_threshold = _refresh_server(settings, champion.info.version)
    called = read_call_list(spark, settings, list_snapshot)
    to_call = called.where("decision = 1").count()
    exported = export_top(spark, settings, list_snapshot, top, csv_path) if csv_path is not None else 0
    return ScoringResult(
        table=settings.table_ident,
        source_snapshot_id=source.snapshot_id,
        rows=source.rows,
        model_name=champion.info.name,
        model_version=champion.info.version,
        economics=report,
        holdout_snapshot_id=holdout_snapshot,
        call_list=call_list_ident(settings),
        call_list_snapshot_id=list_snapshot,
        to_call=to_call,
        exported=exported,
        csv_path=csv_path,
        seconds=time.perf_counter() - start,
        scoring_seconds=scoring_seconds,
        served_threshold=served_threshold,
    )


def _refresh_server(settings: Settings, version: str) -> float | None:
    from lib.serving.client import EndpointError
    from lib.serving.deploy import refresh_threshold

    try:
        return refresh_threshold(settings, version)
    except EndpointError as exc:
        raise ScoringError(
            f"the call list and the tag are written, but the running server did not take the new cut-off: {exc}; "
            "run python -m lib.serving stop, then start"
        ) from exc
