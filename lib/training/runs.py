"""Logging one fitted booster as an MLflow run.

A run holds its params, train/test metrics (`lib.metrics`), the lineage tags, the dataset as an
MLflow input, the servable model (`lib.model.log_bank_model`), feature importance and the
training profile (`lib.profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lib.features import NUMERIC, RAW_COLUMNS, TARGET, FeatureSet, input_example
from lib.metrics import DEFAULT_THRESHOLD, classification_metrics
from lib.training.data import TEST_FRACTION
from lib.training.fit import VALIDATION_FRACTION, Fitted, Prepared
from lib.training.grid import run_name
from lib.training.results import RunResult

if TYPE_CHECKING:
    import xgboost as xgb

    from lib.profile import DataProfile

IMPORTANCE_ARTIFACT = "feature_importance.csv"


def importance(booster: xgb.Booster, features: FeatureSet) -> pd.DataFrame:
    """Gain-based importance of every model column (0 for columns no tree splits on)."""
    kinds = ("gain", "total_gain", "weight", "cover")
    scores = {k: booster.get_score(importance_type=k) for k in kinds}
    table = pd.DataFrame(
        {"feature": list(features.columns)}
        | {k: [float(scores[k].get(c, 0.0)) for c in features.columns] for k in kinds}
    )
    table["gain_share"] = table["total_gain"] / max(float(table["total_gain"].sum()), 1e-12)
    return table.sort_values("gain", ascending=False).reset_index(drop=True)


def lake_dataset(prep: Prepared) -> Any:
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


def run_metrics(prep: Prepared, fitted: Fitted) -> dict[str, float]:
    """Every key of `lib.metrics.RUN_METRIC_KEYS`, plus the booster's round count and fit time."""
    metrics = {f"train_{k}": v for k, v in classification_metrics(prep.y_train, fitted.proba_train).items()}
    metrics |= {f"test_{k}": v for k, v in classification_metrics(prep.y_test, fitted.proba_test).items()}
    return metrics | {
        "val_roc_auc": fitted.val_auc,
        "best_iteration": float(fitted.best_iteration),
        "fit_seconds": fitted.seconds,
    }


@dataclass
class GridShared:
    """What every run of one grid logs identically, built once per grid instead of once per run.

    The dataset (the same slice), the input example (the same training rows), the data part of
    the training profile, and the model signature (the same inputs and output columns: inferred
    by the first logged model, then reused).
    """

    dataset: Any
    example: pd.DataFrame
    profile: DataProfile
    signature: Any = None


def grid_shared(prep: Prepared) -> GridShared:
    """The per-grid logging inputs of `prep`'s runs."""
    from lib.profile import profile_data

    return GridShared(
        dataset=lake_dataset(prep),
        example=input_example(prep.train, prep.features),
        profile=profile_data(prep.train, prep.features),
    )


def log_run(prep: Prepared, fitted: Fitted, experiment_id: str, shared: GridShared, workdir: Path) -> RunResult:
    """One MLflow run: params, train/test metrics, lineage, dataset, model, importance, profile."""
    import mlflow

    from lib.model import log_bank_model
    from lib.profile import PROFILE_ARTIFACT

    metrics = run_metrics(prep, fitted)
    params = {k: v for k, v in fitted.params.items() if k != "nthread"}
    params |= {
        "include_duration": prep.features.include_duration,
        "n_features": len(prep.features.columns),
        "test_fraction": TEST_FRACTION,
        "validation_fraction": VALIDATION_FRACTION,
        "threshold": DEFAULT_THRESHOLD,
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(fitted.entry), tags=prep.tags) as run:
        mlflow.log_params(params)
        mlflow.log_input(shared.dataset, context="training")
        # The model first, then its metrics linked to it: logging a model copies the run's metrics
        # onto it, and MLflow's SQL store cannot copy a NaN one (NaN != NaN defeats its dedup)
        info = log_bank_model(
            fitted.booster,
            prep.features,
            shared.example,
            workdir / run.info.run_id,
            threshold=DEFAULT_THRESHOLD,
            signature=shared.signature,
        )
        shared.signature = info.signature
        mlflow.log_metrics(metrics, model_id=info.model_id)
        mlflow.log_text(importance(fitted.booster, prep.features).to_csv(index=False), IMPORTANCE_ARTIFACT)
        mlflow.log_text(shared.profile.json_with_prediction(fitted.proba_test), PROFILE_ARTIFACT)
    return RunResult(run_id=run.info.run_id, params={k: str(v) for k, v in params.items()}, metrics=metrics)
