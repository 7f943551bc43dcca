"""Batch scoring behind 10_batch_scoring.py: the ranked call list, scored on Spark, kept as an Iceberg table.

The `champion` model scores every row of the table at one snapshot. The booster and its feature
spec are broadcast once; each Python worker builds the model once (cached per broadcast) and
`mapInPandas` feeds it Arrow batches, so the work is spread over the executors and no row pays for
a model load. Encoding is `lib.model.BankModel.predict` (through `lib.features`), the same code the
server and the pyfunc flavour run; `lib` itself is shipped to the executors as a zip.

The table has no customer id (the UCI data has none), so the call list keys rows by content:
`customer_key` = the first 20 hex digits of SHA-256 over the raw columns (in `RAW_COLUMNS`
order), `-`, and the occurrence number among identical rows (a bootstrapped batch can repeat a row;
identical rows are interchangeable, so numbering them is deterministic). The table is append-only,
so a customer keeps the same key in every later snapshot.

The call list `<catalog>.<namespace>.call_list_<user>` is rewritten by every run as ONE Iceberg
snapshot (created, then `overwrite`), so each earlier list stays readable by time travel.
The cut-off comes from the campaign's economics (`lib.economics`) on held-out rows the champion did
not train on (`lib.registry.holdout_rows`); it is logged to the champion's run and set as the
version tag `decision_threshold`, which the model server uses for its decision.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lib.config import PROJECT_ROOT, Settings
from lib.economics import CampaignEconomics, EconomicsReport, evaluate_campaign, plot_gains
from lib.features import CATEGORIES, RAW_COLUMNS, TARGET, labels_to_int
from lib.fileio import atomic_write_bytes, atomic_write_text
from lib.model import BankModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lib.registry import VersionInfo

log = logging.getLogger(__name__)

KEY = "customer_key"
CALL_LIST_COLUMNS = (
    KEY, "probability", "expected_profit", "rank", "decile", "decision", "decision_threshold",
    "model_name", "model_version", "source_snapshot_id", "scored_at",
)  # fmt: skip
THRESHOLD_TAG = "decision_threshold"  # the model-version tag the server's decision reads
ECONOMICS_DIR = "economics"
ECONOMICS_JSON = "economics.json"
GAINS_PNG = "gains.png"
LOCK_TIMEOUT_S = 600.0
_KEY_HEX = 20


class ScoringError(RuntimeError):
    """Batch scoring cannot run in this state; the message says what to run or fix."""


def call_list_name(settings: Settings) -> str:
    """Table name of this user's call list, per user like the customer table."""
    return f"call_list_{settings.user}"


def call_list_ident(settings: Settings) -> str:
    """`catalog.namespace.call_list_<user>`: next to the customer table, in the user's namespace."""
    return f"{settings.catalog_name}.{settings.namespace}.{call_list_name(settings)}"


# --- the model, on the driver and on the executors ---------------------------------------------------


@dataclass(frozen=True)
class ChampionModel:
    """The champion version's registry facts and its model, loaded once on the driver."""

    info: VersionInfo
    model: BankModel

    @property
    def columns(self) -> tuple[str, ...]:
        """The raw input columns the model expects, in order."""
        return self.model.features.columns

    def payload(self) -> dict[str, Any]:
        """What the executors need to rebuild the model: booster bytes and the feature spec."""
        spec = {**self.model.features.to_dict(), "threshold": self.model.threshold}
        return {"booster": bytes(self.model.booster.save_raw("ubj")), "spec": json.dumps(spec)}


def load_champion(settings: Settings) -> ChampionModel:
    """The version `champion` points at, loaded through the standard pyfunc loader."""
    import mlflow

    from lib.registry import require_champion
    from lib.tracking import configure_mlflow, quiet_mlflow

    configure_mlflow(settings)
    info = require_champion(settings)
    with quiet_mlflow():  # no artifact progress bars in a job log
        model = mlflow.pyfunc.load_model(info.uri).unwrap_python_model()
    if not isinstance(model, BankModel):
        raise ScoringError(f"{info.uri} is a {type(model).__name__}, not a BankModel: register a run of 03_train.py")
    return ChampionModel(info=info, model=model)


_WORKER_MODELS: dict[str, BankModel] = {}


def _worker_model(key: str, payload: dict[str, Any]) -> BankModel:
    """The model in this Python worker, built from the broadcast once and reused by every later task."""
    model = _WORKER_MODELS.get(key)
    if model is None:
        with tempfile.TemporaryDirectory(prefix="bank-model-") as tmp:
            booster, spec = Path(tmp, "booster.ubj"), Path(tmp, "feature_spec.json")
            booster.write_bytes(payload["booster"])
            spec.write_text(payload["spec"])
            model = BankModel()
            model.load(booster, spec)
        _WORKER_MODELS.clear()  # one model per worker: a new champion replaces the old one
        _WORKER_MODELS[key] = model
    return model


def _partition_scorer(broadcast: Any, key: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _worker_model(key, broadcast.value)
        for batch in batches:
            proba = model.predict(None, batch)["probability"].to_numpy()
            yield pd.DataFrame({KEY: batch[KEY].to_numpy(), "probability": proba})

    return score


_SHIPPED: set[tuple[int, str]] = set()


def ship_code(spark: SparkSession) -> None:
    """Make `lib` importable on the executors (a zip of its sources via addPyFile, once per context)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((PROJECT_ROOT / "lib").rglob("*.py")):
            info = zipfile.ZipInfo(str(path.relative_to(PROJECT_ROOT)), date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:12]
    sc = spark.sparkContext
    if (id(sc), digest) in _SHIPPED:
        return
    path = Path(tempfile.gettempdir()) / f"bank-mlops-lib-{digest}.zip"
    if not path.is_file():
        atomic_write_bytes(path, data)
    sc.addPyFile(str(path))
    _SHIPPED.add((id(sc), digest))


# --- the call list ---------------------------------------------------------------------------------


def check_features(table: DataFrame, columns: tuple[str, ...], where: str, version: str) -> None:
    """The model's input columns must exist in the table with the raw types (int / string)."""
    types = {f.name: f.dataType.simpleString() for f in table.schema.fields}
    missing = [c for c in columns if c not in types]
    if missing:
        raise ScoringError(f"model v{version} needs column(s) {', '.join(missing)} that {where} lacks: "
                           "score a table written by 01_write_to_dl.py, or train a model on this table")  # fmt: skip
    wrong = [f"{c} is {types[c]}" for c in columns if types[c] != ("string" if c in CATEGORIES else "int")]
    if wrong:
        raise ScoringError(f"model v{version} does not match {where}: {', '.join(wrong)} "
                           "(categories must be string, numbers int)")  # fmt: skip


def with_customer_key(table: DataFrame) -> DataFrame:
    """Add `customer_key`: content hash of the raw columns plus the occurrence among identical rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parts = [F.coalesce(F.col(c).cast("string"), F.lit("\u0000")) for c in RAW_COLUMNS if c in table.columns]
    digest = F.substring(F.sha2(F.concat_ws("\u001f", *parts), 256), 1, _KEY_HEX)
    hashed = table.withColumn("_row_hash", digest)
    occurrence = F.row_number().over(Window.partitionBy("_row_hash").orderBy("_row_hash")) - 1
    return hashed.withColumn(KEY, F.concat_ws("-", "_row_hash", occurrence.cast("string"))).drop("_row_hash")


def build_call_list(
    spark: SparkSession,
    table: DataFrame,
    champion: ChampionModel,
    snapshot_id: int,
    rows: int,
    threshold: float,
    economics: CampaignEconomics,
) -> DataFrame:
    """Score every row on the executors, then rank (1 = most likely), decile and decide against `threshold`.

    `expected_profit` of calling a customer is probability × value − cost: it grows with the
    probability, so the rank orders the list by expected profit too.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ship_code(spark)
    info = champion.info
    payload = champion.payload()
    key = f"{info.name}/{info.version}/{hashlib.sha256(payload['booster']).hexdigest()[:16]}"
    broadcast = spark.sparkContext.broadcast(payload)
    inputs = with_customer_key(table).select(KEY, *champion.columns)
    scored = inputs.mapInPandas(_partition_scorer(broadcast, key), schema=f"{KEY} string, probability double")
    ranking = Window.orderBy(F.col("probability").desc(), F.col(KEY).asc())
    return (
        scored.withColumn("rank", F.row_number().over(ranking))
        .withColumn("expected_profit", F.col("probability") * economics.value_per_deposit - economics.cost_per_call)
        .withColumn("decile", F.expr(f"CAST((`rank` - 1) * 10 DIV {rows} AS INT) + 1"))
        .withColumn("decision", (F.col("probability") >= F.lit(threshold)).cast("int"))
        .withColumn("decision_threshold", F.lit(float(threshold)))
        .withColumn("model_name", F.lit(info.name))
        .withColumn("model_version", F.lit(info.version))
        .withColumn("source_snapshot_id", F.lit(int(snapshot_id)).cast("long"))
        .withColumn("scored_at", F.lit(datetime.now(timezone.utc).replace(tzinfo=None)).cast("timestamp"))
        .select(*CALL_LIST_COLUMNS)
    )


def _lock(settings: Settings):  # -> filelock.FileLock (imported lazily)
    from filelock import FileLock

    path = settings.run_dir / "locks" / f"call-list-{settings.namespace}.{call_list_name(settings)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=LOCK_TIMEOUT_S)


def call_list_snapshot_id(spark: SparkSession, settings: Settings) -> int:
    """The call list's current snapshot id, read after a refresh so it is this run's write."""
    ident = call_list_ident(settings)
    spark.sql(f"REFRESH TABLE {ident}")
    row = spark.sql(f"SELECT snapshot_id FROM {ident}.history ORDER BY made_current_at DESC LIMIT 1").first()
    if row is None:
        raise ScoringError(f"{ident} has no snapshot after the write")
    return int(row.snapshot_id)


def write_call_list(spark: SparkSession, settings: Settings, call_list: DataFrame, properties: dict[str, str]) -> int:
    """Replace the call list's rows in ONE Iceberg commit and return its snapshot (older lists stay readable).

    A file lock keeps two scoring runs on this machine (the chained and the nightly job) from
    committing at the same time.
    """
    from filelock import Timeout
    from pyspark.sql import functions as F

    ident = call_list_ident(settings)
    writer = call_list.writeTo(ident)
    for name, value in properties.items():
        writer = writer.option(f"snapshot-property.{name}", value)
    try:
        with _lock(settings):
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.{settings.namespace}")
            if spark.catalog.tableExists(ident):
                writer.overwrite(F.lit(True))
            else:
                (writer.using("iceberg").tableProperty("format-version", "2")
                 .tableProperty("write.format.default", "parquet").create())  # fmt: skip
            return call_list_snapshot_id(spark, settings)
    except Timeout as exc:
        held = f"{LOCK_TIMEOUT_S:.0f}s"
        raise ScoringError(f"another batch scoring run has held the call-list lock for over {held}") from exc


def read_call_list(spark: SparkSession, settings: Settings, snapshot_id: int | None = None) -> DataFrame:
    """The call list now or, by time travel, as an earlier run wrote it."""
    ident = call_list_ident(settings)
    if not spark.catalog.tableExists(ident):
        raise ScoringError(f"{ident} does not exist: run 10_batch_scoring.py first")
    reader = spark.read.format("iceberg")
    if snapshot_id is not None:
        reader = reader.option("snapshot-id", str(snapshot_id))
    return reader.load(ident)


def call_list_snapshots(spark: SparkSession, settings: Settings) -> list[tuple[int, datetime, dict[str, str]]]:
    """(snapshot id, commit time, summary) of every call list written, oldest first."""
    ident = call_list_ident(settings)
    spark.sql(f"REFRESH TABLE {ident}")
    query = f"SELECT snapshot_id, committed_at, summary FROM {ident}.snapshots ORDER BY committed_at"
    rows = spark.sql(query).collect()
    return [(int(r.snapshot_id), r.committed_at, dict(r.summary or {})) for r in rows]


def export_top(spark: SparkSession, settings: Settings, snapshot_id: int, top: int | None, path: Path) -> int:
    """Write the first `top` rows (all when None) of the call list at `snapshot_id` as CSV, atomically."""
    frame = read_call_list(spark, settings, snapshot_id).orderBy("rank")
    if top is not None:
        frame = frame.limit(top)
    pdf = frame.toPandas()
    atomic_write_text(path, pdf.to_csv(index=False))
    return len(pdf)


# --- the economics, logged to MLflow ------------------------------------------------------------


def campaign_economics(
    spark: SparkSession, settings: Settings, champion: ChampionModel, economics: CampaignEconomics
) -> tuple[EconomicsReport, int]:
    """Cut-off, lift/gains and profit of the champion on rows it did not train on; returns (report, their snapshot)."""
    from lib.registry import holdout_rows

    holdout = holdout_rows(spark, settings, [champion.info])
    labels = labels_to_int(holdout.frame[TARGET])
    proba = champion.model.predict(None, holdout.frame)["probability"].to_numpy()
    return evaluate_campaign(labels, proba, economics), int(holdout.snapshot_id)


def log_economics(settings: Settings, info: VersionInfo, report: EconomicsReport, holdout_snapshot: int) -> None:
    """Metrics and a JSON + PNG artifact on the champion's run; the cut-off as the version tag the server reads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.entities import Metric

    from lib.tracking import configure_mlflow, quiet_mlflow

    client = configure_mlflow(settings)
    now = int(time.time() * 1000)
    cut = report.cutoff
    metrics = [
        Metric("econ_cutoff", cut.threshold, now, 0),
        Metric("econ_profit", cut.profit, now, 0),
        Metric("econ_share_called", cut.share_called, now, 0),
        Metric("econ_precision", cut.precision, now, 0),
        Metric("econ_recall", cut.recall, now, 0),
        Metric("econ_lift_decile_1", float(report.lift["lift"].iloc[0]), now, 0),
    ]
    for row in report.lift.itertuples():
        metrics.append(Metric("econ_lift", float(row.lift), now, int(row.decile)))
        metrics.append(Metric("econ_cumulative_gain", float(row.cumulative_gain), now, int(row.decile)))
    client.log_batch(info.run_id, metrics=metrics)
    data = {**report.to_dict(), "model_name": info.name, "model_version": info.version,
            "holdout_snapshot_id": holdout_snapshot}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="economics-") as tmp:
        Path(tmp, ECONOMICS_JSON).write_text(json.dumps(data, indent=2, default=float))
        fig = plot_gains(report, title=f"{info.name} v{info.version} on {cut.rows:,} held-out rows")
        fig.savefig(Path(tmp, GAINS_PNG), format="png", dpi=110)
        plt.close(fig)
        with quiet_mlflow():
            client.log_artifacts(info.run_id, tmp, artifact_path=ECONOMICS_DIR)
    tags = {
        THRESHOLD_TAG: repr(cut.threshold),
        "economics.cost_per_call": f"{report.economics.cost_per_call:g}",
        "economics.value_per_deposit": f"{report.economics.value_per_deposit:g}",
        "economics.expected_profit": f"{cut.profit:.2f}",
        "economics.holdout_rows": str(cut.rows),
        "economics.holdout_snapshot_id": str(holdout_snapshot),
        "economics.computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(info.name, info.version, key, value)


def load_economics(settings: Settings, version: str | None = None) -> tuple[VersionInfo, EconomicsReport] | None:
    """The economics logged by 10 for `version` (default: the champion); None when 10 has not run for it."""
    import mlflow

    from lib.registry import describe, require_champion
    from lib.tracking import configure_mlflow, quiet_mlflow

    client = configure_mlflow(settings)
    info = require_champion(settings) if version is None else describe(settings, version)
    names = {Path(a.path).name for a in client.list_artifacts(info.run_id, ECONOMICS_DIR)}
    if ECONOMICS_JSON not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="economics-") as tmp:
        with quiet_mlflow():
            path = mlflow.artifacts.download_artifacts(
                run_id=info.run_id, artifact_path=f"{ECONOMICS_DIR}/{ECONOMICS_JSON}", dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )  # fmt: skip
        return info, EconomicsReport.from_dict(json.loads(Path(path).read_text()))


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
    """The table at `snapshot_id` (current when None); refuses a model/table mismatch and an empty table."""
    from lib.lake import current_snapshot_id, read_table

    source = snapshot_id if snapshot_id is not None else current_snapshot_id(spark, settings)
    table = read_table(spark, settings, snapshot_id=source)
    where = f"{settings.table_ident} at snapshot {source}"
    check_features(table, champion.columns, where, champion.info.version)
    rows = table.count()
    if rows == 0:
        raise ScoringError(f"{where} has no rows: load it (01_write_to_dl.py) or append customers (05_newbatch.py)")
    return SourceTable(frame=table, snapshot_id=int(source), rows=rows)


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
    from lib.lake import spark_session

    start = time.perf_counter()
    champion = load_champion(settings)
    log.info("model      : %s v%s (champion) loaded", champion.info.name, champion.info.version)
    with spark_session(settings) as spark:
        source = read_source(spark, settings, champion, snapshot_id)
        log.info("table      : %s @ snapshot %s, %s rows", settings.table_ident, source.snapshot_id, f"{source.rows:,}")
        log.info("economics  : scoring the held-out rows for the cut-off ...")
        report, holdout_snapshot = campaign_economics(spark, settings, champion, economics)
        log.info("scoring    : %s rows on %s ...", f"{source.rows:,}", spark.sparkContext.master)
        list_snapshot = score_customers(spark, settings, champion, source, report.cutoff.threshold, economics)
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
