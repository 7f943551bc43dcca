"""The JVM-free side opens the catalog Spark uses, for every ICEBERG_CATALOG_TYPE (no server contacted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib import lake
from lib.config import load_settings


def settings_for(tmp_path: Path, **env: str):
    return load_settings({"PROJECT_ROOT": str(tmp_path), "PROJECT_OWNER": "t", **env})


def test_jdbc_catalog_becomes_a_sql_catalog_on_the_same_database(tmp_path: Path) -> None:
    s = settings_for(
        tmp_path,
        ICEBERG_CATALOG_TYPE="jdbc",
        ICEBERG_CATALOG_URI="jdbc:postgresql://db:5432/iceberg",
        ICEBERG_CATALOG_USER="lab",
        ICEBERG_CATALOG_PASSWORD="pw",
    )
    props = lake.pyiceberg_catalog_props(s)
    assert props["type"] == "sql" and props["uri"] == "postgresql+psycopg://lab:pw@db:5432/iceberg"
    conf = lake._catalog_conf(s)
    assert conf["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.jdbc.JdbcCatalog"
    assert conf["spark.sql.catalog.lake.jdbc.user"] == "lab"


def test_jdbc_catalog_without_a_uri_is_refused(tmp_path: Path) -> None:
    with pytest.raises(lake.LakeError, match="ICEBERG_CATALOG_URI"):
        lake.pyiceberg_catalog_props(settings_for(tmp_path, ICEBERG_CATALOG_TYPE="jdbc"))


def test_a_missing_jdbc_driver_names_the_make_target(tmp_path: Path) -> None:
    s = settings_for(
        tmp_path,
        ICEBERG_CATALOG_TYPE="jdbc",
        ICEBERG_CATALOG_URI="jdbc:postgresql://db/iceberg",
        ICEBERG_JDBC_DRIVER_JAR=str(tmp_path / "absent.jar"),
    )
    with pytest.raises(lake.LakeError, match="make services-deps"):
        lake.spark_conf(s)


def test_hive_catalog_client_is_installed(tmp_path: Path) -> None:
    from pyiceberg.catalog.hive import HiveCatalog

    s = settings_for(tmp_path, ICEBERG_CATALOG_TYPE="hive", ICEBERG_CATALOG_URI="thrift://127.0.0.1:1")
    assert isinstance(lake._pyiceberg_catalog(s), HiveCatalog)  # builds without contacting the metastore
