"""The Spark scorer: the champion on the executors, in one pass over the table, and the call list it ranks.

The booster is broadcast once; each Python worker (`lib.batch_worker`, which imports no MLflow)
builds it once and `mapInPandas` feeds it Arrow batches, so the work is spread over the
executors and no row pays for a model load. The categories are encoded in Spark SQL from the same
`lib.features.CATEGORIES` lists (position in the list, NaN when unknown, exactly `encode_frame`'s
codes), so the workers get a numeric matrix and no strings; the booster call is BankModel's.

The table has no customer id (the UCI data has none), so the call list keys rows by content:
`customer_key` = 24 hex digits of Spark's `xxhash64` and `hash` over the raw columns (in
`RAW_COLUMNS` order; `row_hash`), `-`, and the occurrence number among identical rows (a
bootstrapped batch can repeat a row; identical rows are interchangeable, so numbering them is
deterministic). The table is append-only, so a customer keeps the same key in every later snapshot.

One pass over the table: the hash is computed in the same stage that scores, and only
(hash, probability) pairs go on (a big model on a table read as fewer splits than there are cores,
e.g. one file, is spread round-robin first so that every core scores). The pairs, not the table,
are then numbered and ranked by one window over (probability, hash).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from lib.batch_worker import ROW_HASH, partition_scorer
from lib.config import PROJECT_ROOT, Settings
from lib.economics import CampaignEconomics
from lib.features import CATEGORIES, RAW_COLUMNS
from lib.fileio import atomic_write_bytes
from lib.model import BankModel
from lib.scoring.table import CALL_LIST_COLUMNS, KEY, ScoringError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from lib.registry import VersionInfo

SPREAD_MIN_ROW_TREES = 50_000_000  # rows × trees: ~1 s of one core walking trees, more than a small shuffle


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

    def payload(self) -> bytes:
        """What the executors need to rebuild the model: the booster's bytes (the encoding is done in Spark SQL)."""
        return bytes(self.model.booster.save_raw("ubj"))


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


# --- inputs: checked, encoded, keyed -----------------------------------------------------------------


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


def encoded_columns(columns: tuple[str, ...]) -> list[Column]:
    """The model's inputs as float columns: numbers cast, categories as their code (null: unknown or missing).

    The code is the value's position in `CATEGORIES[col]`, as in `lib.features.encode_frame`; a
    null becomes NaN in the worker's matrix, which is what encode_frame gives an unknown value.
    """
    from pyspark.sql import functions as F

    out = []
    for col in columns:
        if col in CATEGORIES:
            code = F
            for i, value in enumerate(CATEGORIES[col]):  # CASE WHEN col = 'value' THEN i ... (no ELSE: null)
                code = code.when(F.col(col) == F.lit(value), F.lit(float(i)))
            out.append(code.cast("float").alias(col))
        else:
            out.append(F.col(col).cast("float").alias(col))
    return out


def row_hash(table: DataFrame) -> Column:
    """24 hex digits of two of Spark's native hashes over the raw columns: the content part of `customer_key`.

    Spark's `xxhash64` (64 bits) and `hash` (Murmur3, 32 bits), both seeded 42, over the typed raw
    columns in `RAW_COLUMNS` order plus a mask of which are null (both hashes skip a null). They run
    in the JVM on the values as stored, with no string casts: ~5x cheaper than SHA-256 over the
    columns cast to strings. Both are Spark's bucketing hashes, fixed across Spark versions.
    """
    from functools import reduce
    from operator import add

    from pyspark.sql import functions as F

    columns = [F.col(c) for c in RAW_COLUMNS if c in table.columns]
    nulls = reduce(add, [c.isNull().cast("int") * (1 << i) for i, c in enumerate(columns)])
    high = F.lpad(F.hex(F.xxhash64(*columns, nulls)), 16, "0")  # hex of a long: two's complement, 16 digits
    low = F.lpad(F.hex(F.hash(*columns, nulls).cast("long").bitwiseAND(F.lit(0xFFFFFFFF))), 8, "0")
    return F.lower(F.concat(high, low))


def _numbered_key(frame: DataFrame) -> Column:
    """`<hash>-<occurrence>` over a frame with ROW_HASH: a shuffle by hash, for the Spark-side paths."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    occurrence = F.row_number().over(Window.partitionBy(ROW_HASH).orderBy(ROW_HASH)) - 1
    return F.concat_ws("-", ROW_HASH, occurrence.cast("string"))


def with_customer_key(table: DataFrame) -> DataFrame:
    """Add `customer_key` in Spark: content hash of the raw columns plus the occurrence among identical rows."""
    hashed = table.withColumn(ROW_HASH, row_hash(table))
    return hashed.withColumn(KEY, _numbered_key(hashed)).drop(ROW_HASH)


# --- the call list -------------------------------------------------------------------------------------


def score_pairs(spark: SparkSession, table: DataFrame, champion: ChampionModel, rows: int) -> DataFrame:
    """(row hash, probability) of every row, in ONE stage on the executors: hash, encode and score.

    When the trees to walk (rows × trees) cost more than a shuffle, a table read as fewer splits
    than there are cores is spread round-robin first, so that every core scores.
    """
    ship_code(spark)
    info = champion.info
    payload = champion.payload()
    key = f"{info.name}/{info.version}/{hashlib.sha256(payload).hexdigest()[:16]}"
    broadcast = spark.sparkContext.broadcast(payload)
    inputs = table.select(row_hash(table).alias(ROW_HASH), *encoded_columns(champion.columns))
    cores = spark.sparkContext.defaultParallelism
    big = rows * champion.model.booster.num_boosted_rounds() >= SPREAD_MIN_ROW_TREES
    if big and inputs.rdd.getNumPartitions() < cores:  # a table in one file is one split: every core a share
        inputs = inputs.repartition(cores)
    scorer = partition_scorer(broadcast, key, champion.columns)
    return inputs.mapInPandas(scorer, schema=f"{ROW_HASH} string, probability double")


def ranked_call_list(pairs: DataFrame) -> DataFrame:
    """(customer_key, probability, rank) from the scored pairs, in ONE window (one sort) over the probability.

    Identical rows have the same hash and the same probability, so ordered by (probability desc,
    hash) they are neighbours: a row's occurrence among them is its row number minus the rank of
    its (probability, hash) group, the number `with_customer_key` gives them. This needs no shuffle
    by hash (about half the ranking's time at 200,000 rows). Two different rows would share a key
    only if their 96-bit hashes collided and their probabilities differed: odds about n²/2⁹⁷, one in
    10¹⁵ at 10 million rows. Ranking on the driver (collect, sort in pandas, send back) measured
    slower at 20,000 and at 200,000 rows (BENCHMARKS.md), so Spark ranks at every size.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ranking = Window.orderBy(F.col("probability").desc(), F.col(ROW_HASH).asc())
    position = F.row_number().over(ranking)
    occurrence = position - F.rank().over(ranking)
    key = F.concat_ws("-", ROW_HASH, occurrence.cast("string"))
    return pairs.select(key.alias(KEY), "probability", position.alias("rank"))


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
    from pyspark.sql import functions as F

    info = champion.info
    ranked = ranked_call_list(score_pairs(spark, table, champion, rows))
    profit = F.col("probability") * economics.value_per_deposit - economics.cost_per_call
    return (
        ranked.withColumn("expected_profit", profit)
        .withColumn("decile", F.expr(f"CAST((`rank` - 1) * 10 DIV {rows} AS INT) + 1"))
        .withColumn("decision", (F.col("probability") >= F.lit(threshold)).cast("int"))
        .withColumn("decision_threshold", F.lit(float(threshold)))
        .withColumn("model_name", F.lit(info.name))
        .withColumn("model_version", F.lit(info.version))
        .withColumn("source_snapshot_id", F.lit(int(snapshot_id)).cast("long"))
        .withColumn("scored_at", F.lit(datetime.now(timezone.utc).replace(tzinfo=None)).cast("timestamp"))
        .select(*CALL_LIST_COLUMNS)
    )
