"""New customer batches: generation, drift scenarios, validation and the one-commit append.

A generated batch bootstraps rows of the current table and perturbs the numbers by about ±10%
(as the lab's seed does), but keeps every value a valid record: integers stay integers, ranges
and the pdays/previous convention hold and categories come from the known vocabularies in
`lib.features`. Labels come with the source rows. Drift scenarios move one part of the
distribution far enough for monitoring to notice (PSI well above 0.2).

Every batch, generated or read from a file, is validated against the table schema and the
feature definition before anything is written; a rejected batch leaves the table untouched.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lib import faults
from lib.config import Settings
from lib.features import (
    CATEGORIES,
    NUMERIC,
    NUMERIC_RANGES,
    RAW_COLUMNS,
    TARGET,
    TARGET_VALUES,
    pandas_dtypes,
    spark_ddl,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

PERTURBATION = 0.10  # numeric values move by up to ±10%
APPEND_LOCK_TIMEOUT_S = 600.0
_MAX_EXAMPLES = 3
# An integer as a batch file may write it: ASCII digits only (`\\d` would admit other scripts' digits).
INTEGER_TEXT = r"-?[0-9]+"
_INT64_TEXT = r"-?[0-9]{1,18}"  # surely fits int64; longer integers stay text and fail the range check


class BatchError(ValueError):
    """A batch cannot be appended; the message lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


# --- generation ---------------------------------------------------------------------------------


def _scale(values: pd.Series, rng: np.random.Generator, spread: float = PERTURBATION) -> np.ndarray:
    """Multiply by a uniform factor in [1-spread, 1+spread] and round back to integers."""
    factors = rng.uniform(1.0 - spread, 1.0 + spread, len(values))
    return np.rint(values.to_numpy(dtype=np.float64) * factors).astype(np.int64)


def _clip(values: np.ndarray, column: str, low: int | None = None, high: int | None = None) -> np.ndarray:
    lo, hi = NUMERIC_RANGES[column]
    return np.clip(values, lo if low is None else low, hi if high is None else high)


def _perturb(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Perturb every numeric column by ±10% while keeping each record valid."""
    out = batch.copy()
    out["age"] = _clip(_scale(batch["age"], rng), "age", high=100)
    out["balance"] = _clip(_scale(batch["balance"], rng), "balance")
    out["day"] = _clip(_scale(batch["day"], rng), "day")
    out["duration"] = _clip(_scale(batch["duration"], rng), "duration")
    out["campaign"] = _clip(_scale(batch["campaign"], rng), "campaign")
    # pdays = -1 means "never contacted before" and then previous = 0: keep that convention.
    contacted = (batch["pdays"] != -1).to_numpy()
    out["pdays"] = np.where(contacted, _clip(_scale(batch["pdays"], rng), "pdays", low=1), -1)
    had_previous = (batch["previous"] > 0).to_numpy()
    out["previous"] = np.where(had_previous, _clip(_scale(batch["previous"], rng), "previous", low=1), 0)
    return out


def _drift_none(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return batch


def _drift_age(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    out["age"] = _clip(batch["age"].to_numpy() + rng.integers(12, 26, len(batch)), "age", high=100)
    return out


# The seed data is a May-heavy campaign; the drifted batch is an autumn/winter campaign.
_DRIFT_MONTHS = {"oct": 0.25, "nov": 0.15, "dec": 0.15, "jan": 0.15, "feb": 0.1, "mar": 0.1, "sep": 0.1}


def _drift_month(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    months = list(_DRIFT_MONTHS)
    probs = np.array(list(_DRIFT_MONTHS.values()))
    out["month"] = rng.choice(months, size=len(batch), p=probs / probs.sum())
    return out


def _drift_balance(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    boosted = batch["balance"].to_numpy() * rng.uniform(1.5, 3.0, len(batch)) + rng.integers(1_500, 6_000, len(batch))
    out["balance"] = _clip(np.rint(boosted).astype(np.int64), "balance")
    return out


def _drift_contacts(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    out["campaign"] = _clip(batch["campaign"].to_numpy() + rng.integers(2, 7, len(batch)), "campaign")
    # Half of the never-contacted customers now have a previous campaign behind them.
    fresh = (batch["pdays"] == -1).to_numpy() & (rng.random(len(batch)) < 0.5)
    n = int(fresh.sum())
    pdays = batch["pdays"].to_numpy().copy()
    previous = batch["previous"].to_numpy().copy()
    poutcome = batch["poutcome"].to_numpy(dtype=object).copy()
    pdays[fresh] = rng.integers(30, 400, n)
    previous[fresh] = rng.integers(1, 6, n)
    poutcome[fresh] = rng.choice(["failure", "other", "success"], size=n, p=[0.6, 0.25, 0.15])
    out["pdays"], out["previous"], out["poutcome"] = pdays, previous, poutcome
    return out


@dataclass(frozen=True)
class DriftScenario:
    """A named shift applied to a batch, with the columns monitoring should flag.

    `apply(batch, rng)` returns the shifted batch; `features` are the raw columns it moves.
    """

    description: str
    apply: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]
    features: tuple[str, ...] = ()


DRIFT_SCENARIOS: dict[str, DriftScenario] = {
    "none": DriftScenario("no drift: the batch looks like the current table", _drift_none),
    "age": DriftScenario("older customers: age +12..25 years", _drift_age, ("age",)),
    "month": DriftScenario(
        "another month mix: an autumn/winter campaign instead of May-heavy", _drift_month, ("month",)
    ),
    "balance": DriftScenario("higher balances: x1.5-3 plus 1,500-6,000 EUR", _drift_balance, ("balance",)),
    "contacts": DriftScenario(
        "more contacts: campaign +2..6, half of the never-contacted customers contacted before",
        _drift_contacts,
        ("campaign", "pdays", "previous", "poutcome"),
    ),
}


def drift_help() -> str:
    """One line per scenario, for --help texts."""
    return "; ".join(f"{name}: {s.description}" for name, s in DRIFT_SCENARIOS.items() if name != "none")


def generate_batch(source: pd.DataFrame, rows: int, seed: int, drift: str = "none") -> pd.DataFrame:
    """Bootstrap `rows` records from `source`, perturb numbers by ±10%, apply a drift scenario.

    The result has the raw columns in file order and the raw dtypes; the same seed gives the
    same batch.
    """
    if drift not in DRIFT_SCENARIOS:
        raise BatchError(f"unknown drift scenario {drift!r}; choose one of {', '.join(DRIFT_SCENARIOS)}")
    if rows < 1:
        raise BatchError(f"a batch needs at least one row, got rows={rows}")
    missing = [c for c in RAW_COLUMNS if c not in source.columns]
    if missing:
        raise BatchError(f"source data lacks column(s) {', '.join(missing)}")
    if source.empty:
        raise BatchError("the source table is empty: run 01_write_to_dl.py first")
    rng = np.random.default_rng(seed)
    picked = source.loc[:, list(RAW_COLUMNS)].iloc[rng.integers(0, len(source), rows)]
    batch = picked.reset_index(drop=True).astype(pandas_dtypes())
    batch = _perturb(batch, rng)
    batch = DRIFT_SCENARIOS[drift].apply(batch, rng)
    return batch.loc[:, list(RAW_COLUMNS)].astype(pandas_dtypes())


# --- validation ---------------------------------------------------------------------------------


def _examples(values: pd.Series) -> str:
    uniq = pd.unique(values)[:_MAX_EXAMPLES]
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in uniq)


def _numeric_problem(col: str, values: pd.Series, had_nulls: bool) -> str | None:
    """Type and range check of one numeric column (nulls already dropped and reported)."""
    if values.empty:
        return None  # all null: already reported
    if had_nulls and pd.api.types.is_float_dtype(values) and (values % 1 == 0).all():
        values = values.astype("int64")  # the nulls (reported) turned the int column into float
    low, high = NUMERIC_RANGES[col]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_integer_dtype(values):
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            text = values.astype(str)
            bad = values[~text.str.fullmatch(INTEGER_TEXT)]
            if len(bad):
                return f"{col}: wrong type, expected integer, got text (e.g. {_examples(bad)})"
            # integers as text (too long for int64): compare as Python ints, no int64 overflow
            outside = values[[not low <= int(v) <= high for v in text]]
            return f"{col}: {len(outside)} value(s) outside [{low}, {high}] (e.g. {_examples(outside)})"
        return f"{col}: wrong type, expected integer, got {values.dtype}"
    outside = values[(values < low) | (values > high)]
    if len(outside):
        return f"{col}: {len(outside)} value(s) outside [{low}, {high}] (e.g. {_examples(outside)})"
    return None


def _category_problem(col: str, values: pd.Series, allowed: tuple[str, ...], allow_new: bool) -> str | None:
    not_text = values[~values.map(lambda v: isinstance(v, str))]
    if len(not_text):
        n = len(not_text)
        return f"{col}: wrong type, expected text, got {n} non-text value(s) (e.g. {_examples(not_text)})"
    unknown = values[~values.isin(allowed)]
    if len(unknown) and not allow_new:
        return (
            f"{col}: {len(unknown)} row(s) with unknown category (e.g. {_examples(unknown)}); "
            f"known: {', '.join(allowed)}"
        )
    return None


def validate_batch(df: pd.DataFrame, allow_new_categories: bool = False) -> None:
    """Check a batch against the raw schema and the feature definition.

    Raises BatchError listing every problem at once (wrong type, unknown/missing column, unknown
    category, null, out-of-range, bad target value, empty).
    """
    problems: list[str] = []
    if df.empty:
        raise BatchError("batch rejected: it has no rows", ["empty batch"])
    unknown_cols = [str(c) for c in df.columns if c not in RAW_COLUMNS]
    missing_cols = [c for c in RAW_COLUMNS if c not in df.columns]
    if unknown_cols:
        hint = " (is the file ';'-separated like bank-full.csv?)" if len(df.columns) == 1 else ""
        problems.append(f"unknown column(s): {', '.join(unknown_cols)}{hint}")
    if missing_cols:
        problems.append(f"missing column(s): {', '.join(missing_cols)}")
    for col in (c for c in RAW_COLUMNS if c in df.columns):
        values = df[col]
        nulls = int(values.isna().sum())
        if nulls:
            problems.append(f"{col}: {nulls} null value(s)")
            values = values.dropna()
        if col in NUMERIC:
            problem = _numeric_problem(col, values, bool(nulls))
        elif col == TARGET:
            bad = values[~values.isin(list(TARGET_VALUES))]
            problem = f"{col}: {len(bad)} bad target value(s) (e.g. {_examples(bad)}); expected yes/no"
            problem = problem if len(bad) else None
        else:
            problem = _category_problem(col, values, CATEGORIES[col], allow_new_categories)
        if problem:
            problems.append(problem)
    if problems:
        listing = "; ".join(problems)
        hint = " (05's --allow-new-categories lets unknown categories through)" if "unknown category" in listing else ""
        raise BatchError(f"batch rejected ({len(df)} rows), nothing appended: {listing}{hint}", problems)


def read_batch_csv(path: Path) -> pd.DataFrame:
    """Read a UCI-format (';'-separated, UTF-8, optional BOM, LF or CRLF) CSV for validation.

    Every field is read as text first (Python's csv module, strict quoting) and converted
    explicitly: an integer column becomes int64 only when every value is a plain ASCII integer of
    at most 18 digits (so it always fits); anything else stays text for `validate_batch` to name.
    Empty fields are nulls. Columns may come in any order. File-level problems (not UTF-8, broken
    quoting, a field over the csv module's size limit, rows with more or fewer fields than the
    header, duplicate headers, no header) raise BatchError: the whole file is rejected, never
    part of it.
    """
    if not path.is_file():
        raise BatchError(f"batch file {path} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh, delimiter=";", strict=True) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BatchError(f"batch file {path} is not a readable ';'-separated UTF-8 CSV: {exc}") from exc
    except OSError as exc:
        raise BatchError(f"batch file {path} cannot be read: {exc.strerror or exc}") from exc
    if not rows:
        raise BatchError(f"batch file {path} is empty: it needs a header line and at least one row")
    header, body = rows[0], rows[1:]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise BatchError(f"batch file {path} names column(s) more than once: {', '.join(map(repr, duplicates))}")
    ragged = [(n, len(row)) for n, row in enumerate(body, start=2) if len(row) != len(header)]
    if ragged:
        where = ", ".join(f"line {n} has {k}" for n, k in ragged[:_MAX_EXAMPLES])
        raise BatchError(
            f"batch file {path}: {len(ragged)} row(s) do not have the header's {len(header)} fields ({where})"
        )
    cells = [[None if value == "" else value for value in row] for row in body]
    raw = pd.DataFrame(cells, columns=header, dtype=object)
    if sorted(raw.columns) == sorted(RAW_COLUMNS):
        raw = raw.loc[:, list(RAW_COLUMNS)]
    for col in (c for c in NUMERIC if c in raw.columns):
        values = raw[col]
        present = values.dropna()
        if present.str.fullmatch(_INT64_TEXT).all():
            ints = [None if v is None else int(v) for v in values]
            raw[col] = pd.array(ints, dtype="int64" if len(present) == len(values) else "Int64")
    return raw


# --- append -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppendResult:
    """What an append committed: row counts around it, the new snapshot, its parent, the batch's saved CSV."""

    rows: int
    rows_before: int
    rows_after: int
    snapshot_id: int
    parent_id: int | None
    csv_path: Path


def _check_table_schema(spark: SparkSession, settings: Settings, frame: DataFrame) -> None:
    """The table must still have the raw schema the batch is written with."""
    expected = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]
    actual = [(f.name, f.dataType.simpleString()) for f in spark.table(settings.table_ident).schema.fields]
    if actual != expected:
        raise BatchError(
            f"table {settings.table_ident} schema {actual} differs from the feature definition {expected}: "
            "recreate it with 01_write_to_dl.py"
        )


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_batch_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write a batch atomically in the UCI format (';'-separated, text quoted).

    That is the format `--from-file` and lib.dataset.read_csv read back unchanged.
    """
    text = df.loc[:, list(RAW_COLUMNS)].to_csv(sep=";", index=False, quoting=csv.QUOTE_NONNUMERIC)
    _atomic_write_text(path, text)
    return path


def append_lock_path(settings: Settings) -> Path:
    """The file lock that serializes appends to the table from processes on this machine."""
    return settings.run_dir / "locks" / f"append-{settings.namespace}.{settings.table_name}.lock"


def _append_lock(settings: Settings):  # -> filelock.FileLock (imported lazily)
    from filelock import FileLock

    path = append_lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def _write_pointer(settings: Settings, csv_path: Path, snapshot_id: int, parent_id: int, label: str, rows: int) -> None:
    pointer = {
        "path": csv_path.name,
        "snapshot_id": snapshot_id,
        "parent_id": parent_id,
        "label": label,
        "rows": rows,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic_write_text(latest_pointer(settings), json.dumps(pointer, indent=2))


def append_batch(
    spark: SparkSession,
    settings: Settings,
    batch: pd.DataFrame,
    label: str,
    *,
    allow_new_categories: bool = False,
    lock_timeout: float = APPEND_LOCK_TIMEOUT_S,
) -> AppendResult:
    """Validate, then append the batch as ONE Iceberg commit and keep a CSV copy of it.

    Appends from several processes on this machine are serialized by a file lock (the Hadoop
    catalog's rename commit is not safe across JVMs); a shared catalog additionally retries
    conflicting commits (`commit.retry.num-retries`). The CSV is written before the commit and
    renamed into place after it, so a failed append leaves no batch file behind.
    """
    from filelock import Timeout

    from lib.lake import append, current_snapshot_id, get_snapshot, require_table

    validate_batch(batch, allow_new_categories=allow_new_categories)
    require_table(spark, settings)
    tmp = settings.batches_dir / f".pending-{uuid.uuid4().hex}.csv"
    try:
        write_batch_csv(batch, tmp)
        frame = spark.createDataFrame(batch.loc[:, list(RAW_COLUMNS)], schema=spark_ddl())
        _check_table_schema(spark, settings, frame)
        try:
            with _append_lock(settings).acquire(timeout=lock_timeout):
                parent_id = current_snapshot_id(spark, settings)
                rows_before = get_snapshot(spark, settings, parent_id).total_records
                faults.reached(settings, "append.before_commit")
                snapshot_id = append(spark, settings, frame)
                faults.reached(settings, "append.after_commit")
                rows_after = get_snapshot(spark, settings, snapshot_id).total_records
                csv_path = settings.batches_dir / f"batch_{snapshot_id}_{label}.csv"
                os.replace(tmp, csv_path)
                _write_pointer(settings, csv_path, snapshot_id, parent_id, label, len(batch))
        except Timeout as exc:
            raise BatchError(
                f"another append to {settings.table_ident} held the lock for {lock_timeout:.0f}s; "
                "nothing appended, try again when it has finished"
            ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("appended %d rows to %s as snapshot %d", len(batch), settings.table_ident, snapshot_id)
    return AppendResult(len(batch), rows_before, rows_after, snapshot_id, parent_id, csv_path)


def latest_pointer(settings: Settings) -> Path:
    """A small JSON file naming the table's latest batch (one per table: users can share a root)."""
    return settings.batches_dir / f"latest_{settings.table_name}.json"


def latest_batch_path(settings: Settings) -> Path:
    """The CSV of the most recently appended batch (for the traffic simulator)."""
    pointer = latest_pointer(settings)
    if not pointer.is_file():
        raise BatchError(f"no batch recorded in {settings.batches_dir}: run 05_newbatch.py first")
    try:
        path = settings.batches_dir / json.loads(pointer.read_text())["path"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BatchError(f"{pointer} is corrupt ({exc}): run 05_newbatch.py again") from exc
    if not path.is_file():
        raise BatchError(f"latest batch {path} is missing: run 05_newbatch.py first")
    return path


def check_batch_in_table(settings: Settings) -> None:
    """Refuse to replay the latest batch unless it is still in the table.

    After `lib.lake rollback` past its snapshot, replaying it would send traffic from data the lake
    no longer holds.
    """
    from pyiceberg.table.snapshots import ancestors_of

    from lib.lake import open_table

    snapshot_id = json.loads(latest_pointer(settings).read_text()).get("snapshot_id")
    table = open_table(settings)
    live = {s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)}
    if snapshot_id not in live:
        raise BatchError(
            f"the latest batch (snapshot {snapshot_id}) was rolled back out of {settings.table_ident}: "
            "append a new one (05_newbatch.py) or use --source table"
        )


def load_source(settings: Settings) -> tuple[pd.DataFrame, int]:
    """The current table as pandas plus its snapshot id, read with pyiceberg (no JVM needed)."""
    from lib.lake import LakeError, open_table

    table = open_table(settings)
    snapshot = table.current_snapshot()
    if snapshot is None:
        raise LakeError(f"table {settings.table_ident} has no snapshot yet: run 01_write_to_dl.py first")
    return table.scan(snapshot_id=snapshot.snapshot_id).to_pandas(), int(snapshot.snapshot_id)


def validate_training_data(df: pd.DataFrame, where: str) -> None:
    """Refuse to retrain on data that 05 would have rejected.

    A category let in with --allow-new-categories would silently be treated as missing by the
    model. The message says how to get back to good data.
    """
    try:
        validate_batch(df)
    except BatchError as exc:
        listing = "; ".join(exc.problems)
        raise BatchError(
            f"training data {where} breaks the feature definition: {listing}. "
            "Find the last good snapshot (python -m lib.lake snapshots), roll back "
            "(python -m lib.lake rollback --to ID) or train on it (--snapshot ID)",
            exc.problems,
        ) from exc
