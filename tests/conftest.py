"""Shared fixtures: one Spark session for the whole run, temp project roots, small real data."""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lib.config import PROJECT_ROOT, Settings, load_settings
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
