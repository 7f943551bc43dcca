"""The logged model carries only what inference needs: it loads and predicts in a fresh interpreter
where the server, the jobs and monitoring cannot be imported and the project is not on sys.path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from lib.config import Settings
from lib.features import TARGET, FeatureSet, encode_frame, input_example, labels_to_int
from lib.model import BOOSTER_FILE, INFERENCE_MODULES, log_bank_model
from lib.tracking import ensure_experiment

pytestmark = pytest.mark.integration

BLOCKED = ("lib.serving", "lib.jobs", "lib.monitoring")

# Runs in the child: refuse the blocked packages, load the model from its local copy, predict.
CHILD = """
import importlib.abc, json, sys

BLOCKED = {blocked!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"blocked: {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
import mlflow.pyfunc
import pandas as pd

model = mlflow.pyfunc.load_model({model_dir!r})
frame = pd.DataFrame(json.loads({records!r}))
out = model.predict(frame)
shipped = sorted(m for m in sys.modules if m == "lib" or m.startswith("lib."))
origin = sys.modules["lib.model"].__file__
print(json.dumps({{"probability": out["probability"].tolist(), "modules": shipped, "origin": origin}}))
"""


@pytest.fixture(scope="module")
def model_dir(settings: Settings, bank_sample: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real model logged through `log_bank_model`, downloaded to a local directory."""
    features = FeatureSet()
    booster = xgb.train(
        {"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(
            encode_frame(bank_sample, features),
            label=labels_to_int(bank_sample[TARGET]),
            feature_names=list(features.columns),
            feature_types=features.feature_types,
            enable_categorical=True,
        ),
        num_boost_round=5,
    )
    experiment = ensure_experiment(settings, "model-package")
    workdir = tmp_path_factory.mktemp("logged")
    with mlflow.start_run(experiment_id=experiment):
        info = log_bank_model(booster, features, input_example(bank_sample, features), workdir)
    return Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(workdir / "download")))


def test_the_model_ships_only_the_inference_modules(model_dir: Path) -> None:
    shipped = sorted(p.relative_to(model_dir / "code").as_posix() for p in (model_dir / "code").rglob("*.py"))
    assert shipped == sorted(f"lib/{name}" for name in INFERENCE_MODULES)


def test_the_booster_is_stored_once_and_loaded_from_the_artifacts(model_dir: Path, bank_sample: pd.DataFrame) -> None:
    """The pickled python_model is an empty BankModel (no second copy of the booster); loading the
    model fills it from the logged artifacts."""
    assert (model_dir / "python_model.pkl").stat().st_size < 10_000
    model = mlflow.pyfunc.load_model(str(model_dir)).unwrap_python_model()
    booster = xgb.Booster()
    booster.load_model(model_dir / "artifacts" / BOOSTER_FILE)
    rows = bank_sample.drop(columns=[TARGET]).head(50)
    expected = booster.inplace_predict(encode_frame(rows, FeatureSet()), validate_features=False)
    np.testing.assert_array_equal(model.predict(None, rows)["probability"].to_numpy(), expected.astype(np.float64))


@pytest.mark.slow
def test_the_model_predicts_without_server_jobs_or_monitoring(
    model_dir: Path, bank_sample: pd.DataFrame, tmp_path: Path
) -> None:
    rows = bank_sample.drop(columns=[TARGET]).head(4)
    script = CHILD.format(blocked=BLOCKED, model_dir=str(model_dir), records=rows.to_json(orient="records"))
    # cwd outside the project and no PYTHONPATH: `lib` can only come from the model's own code
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(answer["origin"]).is_relative_to(model_dir / "code")
    assert set(answer["modules"]) <= {"lib", "lib.features", "lib.model"}
    proba = np.asarray(answer["probability"])
    assert proba.shape == (4,) and np.all((proba > 0) & (proba < 1))
