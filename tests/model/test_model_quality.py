"""Model-quality tests on the real vendored data (all 45,211 rows): what a user of the model relies on.

The model is trained once per module through the training library (`train_grid`, the code behind
03_train.py: same split, same features, logged and registered as a real MLflow model), with one
configuration of the default grid, and checked through the logged model the server loads: its
test ROC AUC, that it ignores `duration` (known only after the call), that a successful previous
campaign raises the probability, and that the redeploy gate (07) refuses a worse challenger.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pytest

from lib import registry
from lib.config import DEFAULT_SEED, Settings
from lib.features import LEAKY, TARGET, FeatureSet, labels_to_int
from lib.metrics import classification_metrics
from lib.registry import HoldOut
from lib.training import DEFAULT_GRID, DataSlice, RunResult, split, train_grid
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One configuration of 03's default grid (depth 5, learning rate 0.1): converges in ~100 rounds.
CONFIG = next(e for e in DEFAULT_GRID if e["max_depth"] == 5 and e["learning_rate"] == 0.1 and e["alpha"] == 0.0)
# A deliberately crippled challenger: two depth-1 trees.
CRIPPLED = {"max_depth": 1, "learning_rate": 0.1, "num_boost_round": 2, "early_stopping_rounds": 1}


@dataclass(frozen=True)
class Trained:
    settings: Settings
    run: RunResult
    version: str
    model: mlflow.pyfunc.PyFuncModel


def train(settings: Settings, df: pd.DataFrame, experiment: str, entry: dict, features: FeatureSet) -> Trained:
    """Train and log one run on `df` as 03 would, register it; returns it with its loaded model."""
    data = DataSlice(df, "data/vendor/bank.zip:bank-full.csv", snapshot_id=0, parent_id=None, committed_at=None,
                     mode="full")  # fmt: skip
    result = train_grid(data, settings, experiment, grid=[entry], features=features, progress=False, workers=1)
    version = registry.register_run(settings, result.best.run_id)[0].version
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    return Trained(settings, result.best, version, model)


@pytest.fixture(scope="module")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("model-quality"), "quality")


@pytest.fixture(scope="module")
def default_model(model_settings: Settings, bank_full: pd.DataFrame) -> Trained:
    """03's default setup (no `duration`), registered and made champion."""
    trained = train(model_settings, bank_full, "quality-default", CONFIG, FeatureSet())
    registry.promote(model_settings, trained.version)
    return trained


@pytest.fixture(scope="module")
def duration_model(model_settings: Settings, bank_full: pd.DataFrame) -> Trained:
    """03 --include-duration: the leaky benchmark setup."""
    return train(model_settings, bank_full, "quality-duration", CONFIG, FeatureSet(include_duration=True))


@pytest.fixture(scope="module")
def test_rows(bank_full: pd.DataFrame) -> pd.DataFrame:
    """The held-out rows of the default split: no model of this module was fitted on them."""
    return split(bank_full, seed=DEFAULT_SEED)[1]


def proba(trained: Trained, frame: pd.DataFrame) -> np.ndarray:
    """Probabilities from the logged model exactly as `mlflow.pyfunc` serves it (raw rows in)."""
    return trained.model.predict(frame.drop(columns=[TARGET]))["probability"].to_numpy()


def test_default_model_test_roc_auc_is_at_least_080(default_model: Trained, test_rows: pd.DataFrame) -> None:
    assert default_model.run.metrics["test_roc_auc"] >= 0.80
    # the logged (served) model gives the same number on the same held-out rows
    served = classification_metrics(labels_to_int(test_rows[TARGET]), proba(default_model, test_rows))["roc_auc"]
    assert served == pytest.approx(default_model.run.metrics["test_roc_auc"], abs=1e-6)


def test_with_duration_test_roc_auc_is_at_least_093(duration_model: Trained) -> None:
    assert duration_model.run.params["include_duration"] == "True"
    assert duration_model.run.metrics["test_roc_auc"] >= 0.93


def test_default_model_ignores_duration(
    default_model: Trained, duration_model: Trained, test_rows: pd.DataFrame
) -> None:
    """`duration` is known only once the call is over: the default model must not use it."""
    rows = test_rows.sample(2000, random_state=1).reset_index(drop=True)
    base = proba(default_model, rows)
    for value in (0, 30, 600, 4918):
        changed = rows.assign(**{LEAKY: value})
        assert np.array_equal(proba(default_model, changed), base), f"duration={value} moved a prediction"
        # the serving hot path (validated dict records) agrees
        records = changed.drop(columns=[TARGET]).to_dict("records")
        hot, _ = default_model.model.unwrap_python_model().predict_records(records)
        assert np.allclose(hot, base, rtol=0, atol=1e-7)
    # the check can fail: a model that does use duration moves on it
    leaky = proba(duration_model, rows)
    assert not np.allclose(proba(duration_model, rows.assign(**{LEAKY: 4918})), leaky)


def test_a_successful_previous_campaign_raises_the_probability(default_model: Trained, test_rows: pd.DataFrame) -> None:
    """All else equal, `poutcome=success` scores higher than `failure` (for clients contacted before,
    the only ones a previous outcome can describe)."""
    contacted = test_rows[test_rows["previous"] > 0].reset_index(drop=True)
    assert len(contacted) > 1000
    success = proba(default_model, contacted.assign(poutcome="success"))
    failure = proba(default_model, contacted.assign(poutcome="failure"))
    assert (success > failure).mean() >= 0.99
    assert np.median(success - failure) > 0.1


def test_the_gate_rejects_a_worse_challenger(
    default_model: Trained, model_settings: Settings, bank_full: pd.DataFrame, test_rows: pd.DataFrame
) -> None:
    """07's gate (`lib.registry.evaluate_gate`, called by `lib.serving.deploy.redeploy`) on rows
    neither version trained on: a crippled challenger is rejected, the champion passes against
    itself."""
    champion = registry.require_champion(model_settings)
    assert champion.version == default_model.version
    crippled = train(model_settings, bank_full, "quality-crippled", CRIPPLED, FeatureSet())
    holdout = HoldOut(frame=test_rows, snapshot_id=0, table="data/vendor/bank.zip:bank-full.csv")

    worse = registry.evaluate_gate(model_settings, registry.describe(model_settings, crippled.version), champion,
                                   holdout, tolerance=0.01)  # fmt: skip
    assert not worse.passed
    assert worse.champion_value >= 0.80 and worse.delta < -0.01
    assert registry.describe(model_settings, crippled.version).tags["gate.passed"] == "false"
    assert registry.require_champion(model_settings).version == champion.version

    same = registry.evaluate_gate(model_settings, champion, champion, holdout, tolerance=0.0)
    assert same.passed and same.delta == 0.0


def test_vendored_data_is_the_full_table(bank_full: pd.DataFrame) -> None:
    """The quality thresholds above hold for the real 45,211 rows, not a sample."""
    assert len(bank_full) == 45_211
