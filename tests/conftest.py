"""Shared fixtures: one Spark session for the whole run, temp project roots, small real data."""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lib.config import DEFAULT_SEED, PROJECT_ROOT, Settings, load_settings
from lib.features import pandas_dtypes

VENDOR_ZIP = PROJECT_ROOT / "data" / "vendor" / "bank.zip"


@pytest.fixture(scope="session")
def bank_full() -> pd.DataFrame:
    """The real 45,211-row UCI table, read from the vendored zip."""
    with zipfile.ZipFile(VENDOR_ZIP) as zf, zf.open("bank-full.csv") as fh:
        return pd.read_csv(fh, sep=";", dtype=pandas_dtypes())


@pytest.fixture(scope="session")
def bank_sample(bank_full: pd.DataFrame) -> pd.DataFrame:
    """A stratified 3,000-row sample: enough signal for a model, small enough to stay fast."""
    parts = [g.sample(frac=3000 / len(bank_full), random_state=7) for _, g in bank_full.groupby("y")]
    return pd.concat(parts).sort_index().reset_index(drop=True)


@pytest.fixture(scope="session")
def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("project")


def make_settings(root: Path, user: str = "test", **env: str) -> Settings:
    """Settings for a throwaway project root; all state (lake, MLflow, run dir) lives under it."""
    return load_settings({"PROJECT_ROOT": str(root), "PROJECT_OWNER": user, "SERVE_PORT": "0", **env})


@pytest.fixture(scope="session")
def settings(session_root: Path) -> Settings:
    return make_settings(session_root)


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator:
    """The one Spark session of the test run (local[2], Iceberg catalog in a temp warehouse)."""
    from lib.lake import get_spark

    session = get_spark(dataclasses.replace(settings, spark_master="local[2]"))
    yield session
    session.stop()


@pytest.fixture
def table_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Settings whose table is private to one test (same catalog/warehouse as the Spark session)."""
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:40]
    return dataclasses.replace(settings, user=f"t_{name}")


@pytest.fixture
def sample_table(spark, table_settings: Settings, bank_sample: pd.DataFrame) -> Settings:
    """A private Iceberg table holding the 3,000-row sample; returns its settings."""
    from lib.features import spark_ddl
    from lib.lake import create_or_replace

    create_or_replace(spark, table_settings, spark.createDataFrame(bank_sample, schema=spark_ddl()))
    return table_settings


TINY_GRID = [{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 15, "early_stopping_rounds": 5}]


def register_tiny_models(
    settings: Settings, df: pd.DataFrame, n: int = 1, snapshot_id: int = 0, seed: int = DEFAULT_SEED
) -> list[str]:
    """Train `n` tiny real models on `df` (no Spark), register each; returns their versions.

    Each run logs the model and its training profile like 03_train.py; the last version becomes
    the champion, so `lib.serving` can serve it and monitoring can find its profile. The runs'
    lineage names `snapshot_id` and `seed`.
    """
    from lib import registry
    from lib.training import DataSlice, train_grid

    data = DataSlice(df, settings.table_ident, snapshot_id=snapshot_id, parent_id=None, committed_at=None,
                     mode="full")  # fmt: skip
    grid = [{**TINY_GRID[0], "max_depth": 2 + i} for i in range(n)]
    result = train_grid(data, settings, settings.experiment_name, grid=grid, progress=False, workers=1, seed=seed)
    versions = [registry.register_run(settings, run.run_id)[0].version for run in result.runs]
    registry.promote(settings, versions[-1])
    return versions


@pytest.fixture
def registered_model(table_settings: Settings, bank_sample: pd.DataFrame) -> tuple[Settings, list[str]]:
    """Private settings with two tiny registered versions of the model (v2 is champion)."""
    return table_settings, register_tiny_models(table_settings, bank_sample, n=2)


@pytest.fixture
def registered_on_table(spark, sample_table: Settings, bank_sample: pd.DataFrame) -> tuple[Settings, list[str]]:
    """Like `registered_model`, but the runs' lineage is `sample_table`'s real snapshot and a seed
    (7) other than the default, so code that rebuilds a version's split from its run is exercised."""
    from lib.lake import current_snapshot_id

    snapshot = current_snapshot_id(spark, sample_table)
    return sample_table, register_tiny_models(sample_table, bank_sample, n=2, snapshot_id=snapshot, seed=7)


@pytest.fixture(scope="session")
def train_runs(bank_sample: pd.DataFrame):
    """Factory: log real tiny training runs (no Spark) into an experiment; returns RunResults.

    `grid` entries override TINY_GRID; `shuffle_labels` trains on permuted labels (a model no
    better than chance, for gate rejections); `snapshot_id` is recorded as the runs' lineage.
    """
    from lib.training import DataSlice, train_grid

    def train(settings: Settings, experiment: str, grid: list[dict] | None = None,
              shuffle_labels: bool = False, snapshot_id: int = 0) -> list:  # fmt: skip
        df = bank_sample.copy()
        if shuffle_labels:
            df["y"] = df["y"].sample(frac=1.0, random_state=3).to_numpy()
        data = DataSlice(df, settings.table_ident, snapshot_id=snapshot_id, parent_id=None, committed_at=None,
                         mode="full")  # fmt: skip
        entries = [{**TINY_GRID[0], **entry} for entry in (grid or [{}])]
        return train_grid(data, settings, experiment, grid=entries, progress=False, workers=1).runs

    return train
