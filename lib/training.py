"""Tracked XGBoost training on an Iceberg snapshot: the code behind 03_train.py and 06_retrain.py.

One path for both scripts: `load_training_data` reads a slice of the lake table through Spark
(the whole table, one snapshot, or only the rows a batch appended) and records where it came
from; `train_grid` trains a grid of boosters on it and logs every run to MLflow with its params,
train/test metrics, lineage tags (table, snapshot ids, row counts, git commit), the dataset as
an MLflow input, the servable model (`lib.model.log_bank_model`), feature importance and the
training profile (`lib.profile`). The best run also gets confusion-matrix, ROC and PR figures.

Evaluation is honest: a stratified 70/30 split with a fixed seed (after putting rows in a
canonical order, so the same snapshot always yields the same test rows whoever reads it), and
early stopping on a validation slice carved from the training part, never the test part.

Boosters train in worker threads (XGBoost releases the GIL) while the main thread logs the
finished ones to MLflow, so tracking overhead overlaps with training.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lib.config import PROJECT_ROOT, Settings
from lib.features import (
    NUMERIC,
    RAW_COLUMNS,
    TARGET,
    FeatureSet,
    encode_frame,
    input_example,
    labels_to_int,
    pandas_dtypes,
)

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.15  # of the training part, for early stopping only
THRESHOLD = 0.5
NUM_BOOST_ROUND = 2000
EARLY_STOPPING_ROUNDS = 100
# Non-grid booster settings, tuned on the real 45,211 rows: row/column subsampling, a minimum
# child weight and gamma regularise the slow-learning runs (+0.003-0.004 test ROC AUC over the
# XGBoost defaults); 2,000 rounds leave lr=0.01 room to converge before early stopping.
FIXED_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "min_child_weight": 5,
    "subsample": 0.7,
    "colsample_bytree": 0.8,
    "gamma": 1.0,
}
DEFAULT_GRID: list[dict[str, Any]] = [
    {"max_depth": d, "learning_rate": lr, "alpha": a}
    for d, lr, a in itertools.product((3, 5, 7), (0.01, 0.1), (0.0, 0.1, 1.0))
][:12]
# Keys a grid entry may set: booster parameters plus the two round counts.
GRID_KEYS = frozenset(
    {
        "max_depth", "learning_rate", "eta", "alpha", "lambda", "gamma", "min_child_weight",
        "subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode", "max_bin",
        "max_cat_to_onehot", "max_cat_threshold", "scale_pos_weight", "max_delta_step",
        "grow_policy", "max_leaves", "num_boost_round", "early_stopping_rounds",
    }
)  # fmt: skip
METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss")
MODES = ("full", "incremental", "snapshot")
FIGURES = ("figures/confusion_matrix.png", "figures/roc_curve.png", "figures/precision_recall_curve.png")
IMPORTANCE_ARTIFACT = "feature_importance.csv"


class TrainingError(RuntimeError):
    """Training cannot proceed on this data or configuration; the message says why."""


@dataclass(frozen=True)
class DataSlice:
    """Rows read from the lake plus where they came from (for lineage tags)."""

    df: pd.DataFrame
    table: str
    snapshot_id: int
    parent_id: int | None
    committed_at: str | None
    mode: str


@dataclass(frozen=True)
class RunResult:
    run_id: str
    params: dict
    metrics: dict


@dataclass(frozen=True)
class TrainResult:
    experiment_id: str
    experiment_name: str
    runs: list[RunResult]
    best: RunResult
    selection_metric: str
    seconds: float
    data: DataSlice


# --- data -------------------------------------------------------------------------------------


def _to_pandas(spark_df: Any, what: str) -> pd.DataFrame:
    """Spark rows → pandas with the raw dtypes of `lib.features` (nulls are an error)."""
    df = spark_df.select(*RAW_COLUMNS).toPandas()
    nulls = [c for c in RAW_COLUMNS if df[c].isna().any()]
    if nulls:
        raise TrainingError(f"{what} has missing values in column(s): {', '.join(nulls)}")
    return df.astype(pandas_dtypes())


def load_training_data(
    spark: SparkSession, settings: Settings, *, mode: str = "full", snapshot_id: int | None = None
) -> DataSlice:
    """Read the training slice of the lake table through Spark and record its snapshot lineage.

    full: the whole table at its current snapshot (or at `snapshot_id`, reported as "snapshot");
    incremental: only the rows the current snapshot (or `snapshot_id`) appended to its parent.
    """
    from lib.lake import current_snapshot_id, get_snapshot, read_added, read_table, require_table

    if mode not in MODES:
        raise TrainingError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "snapshot" and snapshot_id is None:
        raise TrainingError("mode 'snapshot' needs a snapshot id (list them: python -m lib.lake snapshots)")
    require_table(spark, settings)
    end_id = snapshot_id if snapshot_id is not None else current_snapshot_id(spark, settings)
    snap = get_snapshot(spark, settings, end_id)
    if mode != "incremental":
        what = f"{settings.table_ident} at snapshot {end_id}"
        df = _to_pandas(read_table(spark, settings, snapshot_id=end_id), what)
        kind = "snapshot" if snapshot_id is not None else "full"
    else:
        if snap.parent_id is None:
            raise TrainingError(
                f"snapshot {end_id} of {settings.table_ident} has no parent, nothing was appended: "
                "use mode full (python 03_train.py)"
            )
        if snap.operation != "append":
            raise TrainingError(
                f"snapshot {end_id} of {settings.table_ident} is an {snap.operation!r}, not an append: "
                "incremental mode needs a batch from 05_newbatch.py; use mode full otherwise"
            )
        what = f"rows appended to {settings.table_ident} by snapshot {end_id}"
        df = _to_pandas(read_added(spark, settings, snap.parent_id, end_id), what)
        kind = "incremental"
    if df.empty:
        raise TrainingError(f"no rows to train on: {what} is empty")
    log.info("read %d rows (%s) from %s", len(df), kind, what)
    return DataSlice(
        df=df,
        table=settings.table_ident,
        snapshot_id=int(end_id),
        parent_id=None if snap.parent_id is None else int(snap.parent_id),
        committed_at=snap.committed_at.isoformat() if snap.committed_at is not None else None,
        mode=kind,
    )


def split(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified 70/30 train/test split, independent of the order the rows were read in.

    Rows are first sorted on every raw column (identical rows are interchangeable), so Spark,
    pyiceberg or a CSV reader all get the same held-out rows for the same snapshot and seed.
    """
    from sklearn.model_selection import train_test_split

    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingError(f"cannot split: missing column(s) {', '.join(missing)}")
    ordered = df.sort_values(list(RAW_COLUMNS), kind="mergesort").reset_index(drop=True)
    y = labels_to_int(ordered[TARGET])
    _check_classes(y, "the data", minimum=4)
    train, test = train_test_split(ordered, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _check_classes(y: np.ndarray, what: str, minimum: int) -> None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if min(positives, negatives) < minimum:
        raise TrainingError(
            f"{what} has {len(y)} rows with {positives} subscribed and {negatives} not: need at least "
            f"{minimum} of each class to split and evaluate; train on more data (mode full)"
        )


# --- metrics ----------------------------------------------------------------------------------


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """Threshold metrics at `threshold` plus ranking metrics and log loss, as plain floats."""
    from sklearn import metrics

    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "precision": float(metrics.precision_score(y, pred, zero_division=0)),
        "recall": float(metrics.recall_score(y, pred, zero_division=0)),
        "f1": float(metrics.f1_score(y, pred, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(metrics.average_precision_score(y, p)) if both else math.nan,
        "log_loss": float(metrics.log_loss(y, p, labels=[0, 1])),
    }


def higher_is_better(metric: str) -> bool:
    """Losses are minimised, every other metric maximised."""
    return not metric.endswith("log_loss")


def _pick_best(runs: list[RunResult], metric: str) -> RunResult:
    """The first run with the best value of `metric` (NaN never wins)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(runs, key=lambda r: -math.inf if math.isnan(r.metrics[metric]) else sign * r.metrics[metric])


# --- grid -------------------------------------------------------------------------------------


def load_grid(spec: str) -> list[dict[str, Any]]:
    """A grid from JSON text or a JSON file: a non-empty list of objects of booster params."""
    is_text = spec.lstrip().startswith("[")
    if not is_text and not Path(spec).is_file():
        raise TrainingError(f"grid file {spec} not found (or pass the grid as JSON text: '[{{...}}]')")
    text = spec if is_text else Path(spec).read_text()
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"grid {'text' if is_text else spec} is not valid JSON: {exc}") from exc
    validate_grid(grid)
    return grid


def validate_grid(grid: Any) -> None:
    """Reject grids with unknown keys or non-numeric values before any run starts."""
    if not isinstance(grid, list) or not grid:
        raise TrainingError("grid must be a non-empty JSON list of parameter objects")
    for i, entry in enumerate(grid):
        if not isinstance(entry, dict):
            raise TrainingError(f"grid entry {i} must be an object of parameters, got {entry!r}")
        unknown = sorted(set(entry) - GRID_KEYS)
        if unknown:
            raise TrainingError(
                f"grid entry {i}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(GRID_KEYS))}"
            )
        for key, value in entry.items():
            if key != "grow_policy" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise TrainingError(f"grid entry {i}: {key} must be a number, got {value!r}")


def run_name(entry: Mapping[str, Any]) -> str:
    short = {"max_depth": "d", "learning_rate": "lr", "alpha": "a"}
    return "xgb-" + "-".join(f"{short.get(k, k)}{v}" for k, v in entry.items())


# --- training ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything the runs of one grid share: splits, matrices, labels, lineage."""

    data: DataSlice
    features: FeatureSet
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Fitted:
    entry: dict[str, Any]
    params: dict[str, Any]
    booster: xgb.Booster
    best_iteration: int
    val_auc: float
    proba_train: np.ndarray
    proba_test: np.ndarray
    seconds: float


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> str:
    """The code version: `git rev-parse HEAD` of the project, or "unknown" outside a checkout."""
    return _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> str:
    """ "true" when tracked files differ from the commit (the commit alone does not pin the code)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return "unknown" if status is None else str(bool(status)).lower()


def prepare_data(data: DataSlice, features: FeatureSet, seed: int) -> Prepared:
    """Split, carve the validation slice, encode once and collect the lineage tags for a grid."""
    from sklearn.model_selection import train_test_split

    train, test = split(data.df, seed)
    y_train = labels_to_int(train[TARGET])
    _check_classes(y_train, "the training part", minimum=4)
    fit, val = train_test_split(train, test_size=VALIDATION_FRACTION, stratify=y_train, random_state=seed)
    y_test = labels_to_int(test[TARGET])
    tags = {
        "table": data.table,
        "iceberg_snapshot_id": str(data.snapshot_id),
        "iceberg_parent_id": "" if data.parent_id is None else str(data.parent_id),
        "iceberg_committed_at": data.committed_at or "",
        "data_mode": data.mode,
        "rows_total": str(len(data.df)),
        "rows_train": str(len(train)),
        "rows_test": str(len(test)),
        "rows_validation": str(len(val)),
        "positive_rate_train": f"{y_train.mean():.4f}",
        "positive_rate_test": f"{y_test.mean():.4f}",
        "include_duration": str(features.include_duration).lower(),
        "grid_id": uuid.uuid4().hex,  # the runs of one 03/06 invocation; deployment picks among the newest
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }
    tags["mlflow.source.git.commit"] = tags["git_commit"]
    return Prepared(
        data=data,
        features=features,
        seed=seed,
        train=train,
        test=test,
        x_fit=encode_frame(fit, features),
        y_fit=labels_to_int(fit[TARGET]),
        x_val=encode_frame(val, features),
        y_val=labels_to_int(val[TARGET]),
        x_train=encode_frame(train, features),
        y_train=y_train,
        x_test=encode_frame(test, features),
        y_test=y_test,
        tags=tags,
    )


def _booster_params(entry: Mapping[str, Any], seed: int, nthread: int) -> tuple[dict[str, Any], int, int]:
    params = {**FIXED_PARAMS, **entry, "seed": seed, "nthread": nthread}
    rounds = int(params.pop("num_boost_round", NUM_BOOST_ROUND))
    early = int(params.pop("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
    return params, rounds, early


def fit_booster(prep: Prepared, entry: dict[str, Any], nthread: int) -> Fitted:
    """Train one booster with early stopping on the validation slice (runs in a worker thread)."""
    import xgboost as xgb

    start = time.perf_counter()
    params, rounds, early = _booster_params(entry, prep.seed, nthread)
    names, types = list(prep.features.columns), prep.features.feature_types

    def matrix(x: np.ndarray, y: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, feature_names=names, feature_types=types, enable_categorical=True)

    booster = xgb.train(
        params,
        matrix(prep.x_fit, prep.y_fit),
        num_boost_round=rounds,
        evals=[(matrix(prep.x_val, prep.y_val), "validation")],
        early_stopping_rounds=early,
        verbose_eval=False,
    )
    best, val_auc = int(booster.best_iteration), float(booster.best_score)
    booster = booster[: best + 1]
    return Fitted(
        entry=entry,
        params={**params, "num_boost_round": rounds, "early_stopping_rounds": early},
        booster=booster,
        best_iteration=best,
        val_auc=val_auc,
        proba_train=booster.inplace_predict(prep.x_train, validate_features=False),
        proba_test=booster.inplace_predict(prep.x_test, validate_features=False),
        seconds=time.perf_counter() - start,
    )


def _importance(booster: xgb.Booster, features: FeatureSet) -> pd.DataFrame:
    """Gain-based importance of every model column (0 for columns no tree splits on)."""
    kinds = ("gain", "total_gain", "weight", "cover")
    scores = {k: booster.get_score(importance_type=k) for k in kinds}
    table = pd.DataFrame(
        {"feature": list(features.columns)}
        | {k: [float(scores[k].get(c, 0.0)) for c in features.columns] for k in kinds}
    )
    table["gain_share"] = table["total_gain"] / max(float(table["total_gain"].sum()), 1e-12)
    return table.sort_values("gain", ascending=False).reset_index(drop=True)


def _dataset(prep: Prepared) -> Any:
    """The slice as an MLflow dataset named after the table, its digest naming the snapshot.

    The schema comes from `lib.features` (the table's schema) instead of MLflow inferring it
    value by value, which takes seconds on 45k rows of text columns.
    """
    from functools import cached_property

    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.data.spark_dataset_source import SparkDatasetSource
    from mlflow.types import ColSpec, Schema

    class LakeDataset(PandasDataset):
        @cached_property
        def schema(self) -> Schema:
            return Schema([ColSpec("long" if c in NUMERIC else "string", c) for c in RAW_COLUMNS])

    data = prep.data
    if data.mode == "incremental":
        source = SparkDatasetSource(table_name=data.table)
        digest = f"added-{data.snapshot_id}"
    else:
        source = SparkDatasetSource(sql=f"SELECT * FROM {data.table} VERSION AS OF {data.snapshot_id}")
        digest = f"snapshot-{data.snapshot_id}"
    return LakeDataset(data.df, source=source, targets=TARGET, name=data.table, digest=digest)


def _log_run(prep: Prepared, fitted: Fitted, experiment_id: str, dataset: Any, workdir: Path) -> RunResult:
    """One MLflow run: params, train/test metrics, lineage, dataset, model, importance, profile."""
    import mlflow

    from lib.model import log_bank_model
    from lib.profile import PROFILE_ARTIFACT, build_profile

    metrics = {f"train_{k}": v for k, v in evaluate(prep.y_train, fitted.proba_train).items()}
    metrics |= {f"test_{k}": v for k, v in evaluate(prep.y_test, fitted.proba_test).items()}
    metrics |= {
        "val_roc_auc": fitted.val_auc,
        "best_iteration": float(fitted.best_iteration),
        "fit_seconds": fitted.seconds,
    }
    params = {k: v for k, v in fitted.params.items() if k != "nthread"}
    params |= {
        "include_duration": prep.features.include_duration,
        "n_features": len(prep.features.columns),
        "test_fraction": TEST_FRACTION,
        "validation_fraction": VALIDATION_FRACTION,
        "threshold": THRESHOLD,
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(fitted.entry), tags=prep.tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.log_input(dataset, context="training")
        log_bank_model(
            fitted.booster,
            prep.features,
            input_example(prep.train, prep.features),
            workdir / run.info.run_id,
            threshold=THRESHOLD,
        )
        mlflow.log_text(_importance(fitted.booster, prep.features).to_csv(index=False), IMPORTANCE_ARTIFACT)
        mlflow.log_dict(build_profile(prep.train, prep.features, fitted.proba_test), PROFILE_ARTIFACT)
    return RunResult(run_id=run.info.run_id, params={k: str(v) for k, v in params.items()}, metrics=metrics)


def _log_figures(run_id: str, y_test: np.ndarray, proba: np.ndarray) -> None:
    """Confusion matrix, ROC and precision-recall curves on the test split, as PNG artifacts.

    Figures are built with `matplotlib.figure.Figure` (rendered by the Agg canvas), so no GUI
    backend or pyplot global state is involved.
    """
    import mlflow
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    pred = (proba >= THRESHOLD).astype(int)
    with mlflow.start_run(run_id=run_id):
        for path in FIGURES:
            fig = Figure(figsize=(5, 4.5), dpi=100)
            ax = fig.add_subplot()
            if "confusion" in path:
                ConfusionMatrixDisplay.from_predictions(
                    y_test, pred, display_labels=["no", "yes"], ax=ax, colorbar=False
                )
                ax.set_title(f"Test confusion matrix (threshold {THRESHOLD})")
            elif "roc" in path:
                RocCurveDisplay.from_predictions(y_test, proba, ax=ax, name="XGBoost", plot_chance_level=True)
                ax.set_title("Test ROC curve")
            else:
                PrecisionRecallDisplay.from_predictions(y_test, proba, ax=ax, name="XGBoost", plot_chance_level=True)
                ax.set_title("Test precision-recall curve")
            fig.tight_layout()
            mlflow.log_figure(fig, path)
        mlflow.set_tag("grid_best", "true")


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(n_runs: int) -> int:
    """Parallel boosters: one per core (capped by the number of runs)."""
    return max(1, min(cpu_cores(), n_runs))


def train_grid(
    data: DataSlice,
    settings: Settings,
    experiment_name: str,
    *,
    grid: list[dict] | None = None,
    features: FeatureSet = FeatureSet(),  # noqa: B008 - frozen dataclass, safe as a default
    selection_metric: str = "test_roc_auc",
    seed: int = 42,
    progress: bool = True,
    workers: int | None = None,
) -> TrainResult:
    """Train and log one MLflow run per grid entry; return all runs and the best by the metric.

    `workers` boosters train at once with `cores // workers` threads each (default: one
    single-threaded booster per core); the main thread logs finished runs in grid order.
    """
    from tqdm.auto import tqdm

    from lib.tracking import ensure_experiment, quiet_mlflow

    start = time.perf_counter()
    grid = [dict(entry) for entry in (DEFAULT_GRID if grid is None else grid)]
    validate_grid(grid)
    metric_keys = {f"{part}_{m}" for part in ("train", "test") for m in METRIC_NAMES} | {"val_roc_auc"}
    if selection_metric not in metric_keys:
        raise TrainingError(
            f"unknown selection metric {selection_metric!r}; choose one of {', '.join(sorted(metric_keys))}"
        )
    workers = workers or default_workers(len(grid))
    nthread = max(1, cpu_cores() // workers)

    prep = prepare_data(data, features, seed)
    runs: list[RunResult] = []
    probas: dict[str, np.ndarray] = {}
    with (
        quiet_mlflow(),
        tempfile.TemporaryDirectory(prefix="train-") as tmp,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        experiment_id = ensure_experiment(settings, experiment_name)
        dataset = _dataset(prep)
        bar = tqdm(total=len(grid), desc=f"training {experiment_name}", unit="run", disable=not progress)
        futures = [pool.submit(fit_booster, prep, entry, nthread) for entry in grid]
        try:
            for future in futures:
                fitted = future.result()
                result = _log_run(prep, fitted, experiment_id, dataset, Path(tmp))
                runs.append(result)
                probas[result.run_id] = fitted.proba_test
                bar.set_postfix({selection_metric: f"{result.metrics[selection_metric]:.4f}"})
                bar.update()
        finally:
            for future in futures:
                future.cancel()
            bar.close()
        best = _pick_best(runs, selection_metric)
        _log_figures(best.run_id, prep.y_test, probas[best.run_id])
    seconds = time.perf_counter() - start
    log.info("%d runs in %.1fs; best %s %s=%.4f", len(runs), seconds, best.run_id, selection_metric,
             best.metrics[selection_metric])  # fmt: skip
    return TrainResult(
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        runs=runs,
        best=best,
        selection_metric=selection_metric,
        seconds=seconds,
        data=data,
    )


# --- reading results back ---------------------------------------------------------------------


def best_run(
    settings: Settings, experiment_name: str, selection_metric: str = "test_roc_auc", *, latest_grid: bool = False
) -> RunResult:
    """The finished run of an experiment with the best `selection_metric` (max, min for losses).

    latest_grid: only among the runs of the newest grid (one 03/06 invocation), so deploying picks
    the result of the last training, not an older run scored on another snapshot's test split.
    """
    from lib.tracking import configure_mlflow

    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(experiment_name)
    missing = TrainingError(f"no runs in experiment {experiment_name}: run 03_train.py first")
    if experiment is None:
        raise missing
    finished = f"attributes.status = 'FINISHED' and metrics.{selection_metric} > -1e300"
    if latest_grid:
        newest = client.search_runs(
            [experiment.experiment_id], filter_string=finished, order_by=["attributes.start_time DESC"], max_results=1
        )
        grid_id = newest[0].data.tags.get("grid_id") if newest else None
        if grid_id:
            finished += f" and tags.grid_id = '{grid_id}'"
    order = "DESC" if higher_is_better(selection_metric) else "ASC"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=finished,
        order_by=[f"metrics.{selection_metric} {order}", "attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise missing
    run = runs[0]
    return RunResult(run_id=run.info.run_id, params=dict(run.data.params), metrics=dict(run.data.metrics))


def format_leaderboard(result: TrainResult) -> str:
    """A plain-text table of the runs, best first by the selection metric (best marked *).

    The params shown are the ones that vary across the runs (the grid's axes).
    """
    keys = sorted({k for r in result.runs for k in r.params if len({x.params.get(k) for x in result.runs}) > 1})
    keys = keys or [k for k in ("max_depth", "learning_rate", "alpha") if k in result.best.params]
    metric = result.selection_metric
    ordered = sorted(result.runs, key=lambda r: r.metrics[metric], reverse=higher_is_better(metric))
    cols = ["test_roc_auc", "test_pr_auc", "test_f1", "test_accuracy"]
    if metric not in cols:
        cols.insert(0, metric)
    header = f"  {'run_id':32}  " + "  ".join(f"{k:>13}" for k in keys) + "  " + "  ".join(f"{c:>13}" for c in cols)
    lines = [header]
    for r in ordered:
        mark = "*" if r.run_id == result.best.run_id else " "
        values = "  ".join(f"{r.params.get(k, ''):>13}" for k in keys)
        scores = "  ".join(f"{r.metrics[c]:>13.4f}" for c in cols)
        lines.append(f"{mark} {r.run_id:32}  {values}  {scores}")
    return "\n".join(lines)
