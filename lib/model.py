"""The logged model: an XGBoost booster plus the feature encoding, as one MLflow pyfunc.

Preprocessing travels inside the model (this class and `lib.features`, shipped as MLflow
`code_paths`), so `mlflow models serve` and `mlflow.pyfunc.load_model` take raw records with
string categories. Our own server calls `predict_records` / `contributions` on the same object:
one encoding, no second implementation.

The shipped code is only what inference imports (`INFERENCE_MODULES`, as a `lib` package): a
loaded model needs neither the server, the jobs nor monitoring, and puts none of them on the
loading process's `sys.path`.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import xgboost as xgb

from lib.features import FeatureSet, encode_frame, encode_records

BOOSTER_FILE = "booster.ubj"
SPEC_FILE = "feature_spec.json"
# the modules a loaded model imports: the feature definition and this wrapper (lib/__init__.py too)
INFERENCE_MODULES = ("__init__.py", "features.py", "model.py")


def save_artifacts(booster: xgb.Booster, features: FeatureSet, threshold: float, out: Path) -> dict[str, str]:
    """Write the booster and feature spec; return the artifacts mapping for `log_model`."""
    out.mkdir(parents=True, exist_ok=True)
    booster.save_model(out / BOOSTER_FILE)
    spec = {**features.to_dict(), "threshold": threshold}
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return {"booster": str(out / BOOSTER_FILE), "feature_spec": str(out / SPEC_FILE)}


class BankModel(mlflow.pyfunc.PythonModel):
    """Raw records in; probability of subscribing and a 0/1 prediction out."""

    booster: xgb.Booster
    features: FeatureSet
    threshold: float

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """MLflow's hook: load the booster and feature spec logged as the model's artifacts."""
        self.load(Path(context.artifacts["booster"]), Path(context.artifacts["feature_spec"]))

    def load(self, booster_path: Path, spec_path: Path) -> None:
        """Load a saved booster and its feature spec; one thread, as the server scores on one core."""
        spec = json.loads(spec_path.read_text())
        self.features = FeatureSet.from_dict(spec)
        self.threshold = float(spec["threshold"])
        self.booster = xgb.Booster()
        self.booster.load_model(booster_path)
        self.booster.set_param({"nthread": 1})

    def _proba(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(matrix, validate_features=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Score raw rows: the 0/1 decision at the model's threshold and the probability."""
        proba = self._proba(encode_frame(model_input, self.features))
        return pd.DataFrame(
            {
                "prediction": (proba >= self.threshold).astype(np.int64),
                "probability": proba.astype(np.float64),
            }
        )

    def predict_records(
        self, records: Sequence[Mapping[str, Any]], threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated dict records → (probabilities, 0/1 predictions); the serving hot path.

        `threshold` overrides the one logged with the model (the server's comes from the registry).
        """
        proba = self._proba(encode_records(records, self.features))
        cut = self.threshold if threshold is None else threshold
        return proba, (proba >= cut).astype(np.int64)

    def contributions(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
        """Per-feature SHAP contributions (log-odds) from XGBoost's TreeSHAP, plus the bias."""
        matrix = encode_records(records, self.features)
        dm = xgb.DMatrix(
            matrix,
            feature_names=list(self.features.columns),
            feature_types=self.features.feature_types,
            enable_categorical=True,
        )
        contribs = self.booster.predict(dm, pred_contribs=True)
        names = [*self.features.columns, "bias"]
        return [dict(zip(names, map(float, row), strict=True)) for row in contribs]


# `import xgboost` comes from xgboost-cpu (no GPU libraries) where it has wheels and from xgboost elsewhere
# (requirements.txt's platform markers); the logged model names whichever is installed here
XGBOOST_DISTRIBUTIONS = ("xgboost-cpu", "xgboost")
PIP_REQUIREMENTS_PACKAGES = ("mlflow", XGBOOST_DISTRIBUTIONS, "numpy", "pandas", "scikit-learn")


def installed_distribution(candidates: Sequence[str]) -> str:
    """The first of `candidates` installed in this environment: the name pip knows it by."""
    from importlib.metadata import PackageNotFoundError, distribution

    for name in candidates:
        try:
            return distribution(name).metadata["Name"]
        except PackageNotFoundError:
            continue
    raise PackageNotFoundError(f"none of {', '.join(candidates)} is installed")


def pip_requirements() -> list[str]:
    """Pinned requirements of the running environment, for logging with a model.

    Given explicitly so MLflow does not spend seconds inferring them per logged model. A tuple
    entry is alternatives (the one installed is named), so a model trained on a Mac asks for
    xgboost, not xgboost-cpu.
    """
    return list(_installed_pins())


@functools.cache
def _installed_pins() -> tuple[str, ...]:
    """The pins, read once per process (every model of a grid logs the same ones)."""
    from importlib.metadata import version

    names = [installed_distribution(pkg) if isinstance(pkg, tuple) else pkg for pkg in PIP_REQUIREMENTS_PACKAGES]
    return tuple(f"{name}=={version(name)}" for name in names)


def inference_code(out: Path) -> Path:
    """Copy the inference modules into `out/lib` (the model's `code_paths` entry) and return it."""
    source = Path(__file__).resolve().parent
    package = out / source.name
    package.mkdir(parents=True, exist_ok=True)
    for name in INFERENCE_MODULES:
        shutil.copyfile(source / name, package / name)
    return package


def log_bank_model(
    booster: xgb.Booster,
    features: FeatureSet,
    input_example: pd.DataFrame,
    workdir: Path,
    threshold: float = 0.5,
    name: str = "model",
    signature: mlflow.models.ModelSignature | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the booster + encoding as a pyfunc in the active run; servable by `mlflow models serve`.

    `signature` is inferred from the model's answer to `input_example` unless given: the runs of a
    grid share it (same inputs, same output columns), so a grid infers it once. The pickled
    `python_model` is an empty `BankModel`: `load_context` loads the booster from the artifacts
    on every load, so a loaded one would store (and pickle, and unpickle) the booster twice.
    """
    from mlflow.models import infer_signature

    artifacts = save_artifacts(booster, features, threshold, workdir)
    if signature is None:
        model = BankModel()
        model.load(Path(artifacts["booster"]), Path(artifacts["feature_spec"]))
        signature = infer_signature(input_example, model.predict(None, input_example))
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=BankModel(),
        artifacts=artifacts,
        code_paths=[str(inference_code(workdir / "code"))],
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )
