"""The training-data profile: the reference distributions monitoring compares live traffic to.

Every training run logs `training_profile.json` at the root of its artifacts. Format::

    {"n_rows": int,
     "features": FeatureSet.to_dict(),
     "numeric": {col: {"edges": [...], "counts": [...], "sample": [...]}},
     "categorical": {col: {"frequencies": {value: share}}},
     "prediction": {"edges": [0.0, 0.1, ..., 1.0], "counts": [...], "sample": [...]} | null}

Edge convention (numeric columns and predictions alike): `edges` are finite numbers, sorted and
strictly increasing. For numeric columns they are the training deciles (quantiles 0, 0.1, ...,
1.0, linear interpolation) with duplicates removed, so `edges[0]` is the training minimum and
`edges[-1]` the training maximum; a constant column has `[v, v]` and one bin. There are
`len(edges) - 1` bins: bin i holds `edges[i] <= x < edges[i+1]`, the last bin also holds
`x == edges[-1]`, and the outer edges act as -inf/+inf: values below `edges[0]` count in the
first bin, values above `edges[-1]` in the last. `bin_counts` implements exactly this; use it
for live data so both sides are binned the same way.

`sample` holds up to 5,000 raw values drawn without replacement with a fixed seed (for
two-sample tests). `frequencies` cover the whole vocabulary `CATEGORIES[col]` (zeros included)
and sum to 1; a value outside the vocabulary (not possible for validated data) would appear
under the key `__other__`. `prediction` is the model's probability distribution on rows it
was not trained on (the held-out test split), or null when no predictions are given.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.config import Settings
from lib.features import CATEGORIES, FeatureSet

PROFILE_ARTIFACT = "training_profile.json"
SAMPLE_SIZE = 5000
SAMPLE_SEED = 0
OTHER = "__other__"
PREDICTION_EDGES: list[float] = [round(i / 10, 1) for i in range(11)]


class ProfileError(RuntimeError):
    """A profile cannot be built or found."""


def bin_counts(values: np.ndarray | pd.Series | list, edges: list[float]) -> list[int]:
    """Count `values` into the bins of `edges` (see the module docstring for the convention)."""
    if len(edges) < 2:
        raise ProfileError(f"a histogram needs at least 2 edges, got {len(edges)}")
    arr = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(edges[1:-1], dtype=np.float64), arr, side="right")
    return np.bincount(idx, minlength=len(edges) - 1).astype(int).tolist()


def decile_edges(values: np.ndarray) -> list[float]:
    """Training deciles, deduplicated; `[v, v]` for a constant column."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ProfileError("cannot profile an empty column")
    edges = np.unique(np.quantile(arr, np.linspace(0.0, 1.0, 11))).tolist()
    return edges if len(edges) > 1 else [edges[0], edges[0]]


def _sample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if values.size <= SAMPLE_SIZE:
        return values
    return values[np.sort(rng.choice(values.size, SAMPLE_SIZE, replace=False))]


def _numeric(values: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    edges = decile_edges(values)
    return {"edges": edges, "counts": bin_counts(values, edges), "sample": _sample(values, rng).tolist()}


def _frequencies(series: pd.Series, vocabulary: tuple[str, ...]) -> dict[str, float]:
    counts = series.astype("object").value_counts()
    n = int(counts.sum())
    freqs = {value: float(counts.get(value, 0)) / n for value in vocabulary}
    other = n - int(sum(counts.get(value, 0) for value in vocabulary))
    if other:
        freqs[OTHER] = other / n
    return freqs


@dataclass(frozen=True)
class DataProfile:
    """The data part of a profile and the sampler's state after it, shared by every run of a grid.

    The runs of one grid profile the same training rows; only the predictions differ. Computing
    the data part once and continuing the sampler from the saved state gives, for each run,
    exactly the profile `build_profile` would (the same draws, in the same order).
    """

    n_rows: int
    features: dict[str, Any]
    numeric: dict[str, Any]
    categorical: dict[str, Any]
    rng_state: dict[str, Any]

    def with_prediction(self, proba: np.ndarray | None) -> dict[str, Any]:
        """The full profile for one model's held-out `proba` (or None)."""
        prediction = None
        if proba is not None:
            rng = np.random.default_rng(SAMPLE_SEED)
            rng.bit_generator.state = self.rng_state
            p = np.asarray(proba, dtype=np.float64)
            prediction = {
                "edges": PREDICTION_EDGES,
                "counts": bin_counts(p, PREDICTION_EDGES),
                "sample": [round(float(v), 6) for v in _sample(p, rng)],
            }
        return {
            "n_rows": self.n_rows,
            "features": self.features,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "prediction": prediction,
        }

    def json_with_prediction(self, proba: np.ndarray | None) -> str:
        """`with_prediction(proba)` as the JSON text `mlflow.log_dict` writes (indent 2), in far less time.

        The data part (tens of thousands of sampled values) is the same for every run of a grid:
        it is encoded once and each run's prediction part is spliced in, giving the same text as
        encoding the whole profile per run.
        """
        prediction = json.dumps(self.with_prediction(proba)["prediction"], indent=2, default=str)
        return self._json_head + prediction.replace("\n", "\n  ") + "\n}"

    @cached_property
    def _json_head(self) -> str:
        """The profile's JSON text up to the value of its last key, "prediction"."""
        return json.dumps(self.with_prediction(None), indent=2, default=str).removesuffix("null\n}")


def profile_data(df: pd.DataFrame, features: FeatureSet) -> DataProfile:
    """Reference distributions of the model's input columns in `df`, ready to add predictions to."""
    if df.empty:
        raise ProfileError("cannot profile an empty training frame")
    missing = [c for c in features.columns if c not in df.columns]
    if missing:
        raise ProfileError(f"training frame lacks column(s): {', '.join(missing)}")
    rng = np.random.default_rng(SAMPLE_SEED)
    numeric = {col: _numeric(df[col].to_numpy(dtype=np.int64), rng) for col in features.numeric}
    categorical = {col: {"frequencies": _frequencies(df[col], CATEGORIES[col])} for col in features.categorical}
    return DataProfile(len(df), features.to_dict(), numeric, categorical, rng.bit_generator.state)


def build_profile(df: pd.DataFrame, features: FeatureSet, proba: np.ndarray | None) -> dict[str, Any]:
    """Reference distributions of the model's input columns in `df` (and of `proba`)."""
    return profile_data(df, features).with_prediction(proba)


def load_profile(run_id: str, settings: Settings) -> dict[str, Any]:
    """Download and parse the profile logged with a run (e.g. the registered model's run)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from lib.tracking import configure_mlflow

    configure_mlflow(settings)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PROFILE_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise ProfileError(
                f"run {run_id} has no {PROFILE_ARTIFACT}: train it with 03_train.py or 06_retrain.py"
            ) from exc
        return json.loads(Path(path).read_text())
