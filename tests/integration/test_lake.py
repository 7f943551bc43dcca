"""The lakehouse helpers against a real Spark + Iceberg (Hadoop catalog in a temp warehouse)."""

import pandas as pd
import pytest

from lib import lake
from lib.features import RAW_COLUMNS, spark_ddl

pytestmark = pytest.mark.integration


def test_write_and_read_back_with_spark_and_pyiceberg(spark, sample_table, bank_sample: pd.DataFrame):
    df = lake.read_table(spark, sample_table)
    assert df.count() == len(bank_sample)
    assert [f.name for f in df.schema.fields] == list(RAW_COLUMNS)
    assert dict(df.dtypes)["age"] == "int" and dict(df.dtypes)["job"] == "string"

    jvm_free = lake.read_pandas(sample_table)
    assert len(jvm_free) == len(bank_sample)
    assert list(jvm_free.columns) == list(RAW_COLUMNS)
    assert jvm_free["balance"].sum() == bank_sample["balance"].sum()
    assert (jvm_free["y"].value_counts() == bank_sample["y"].value_counts()).all()


def test_append_creates_snapshot_and_incremental_read(spark, sample_table, bank_sample: pd.DataFrame):
    first = lake.current_snapshot_id(spark, sample_table)
    batch = bank_sample.head(25)
    new = lake.append(spark, sample_table, spark.createDataFrame(batch, schema=spark_ddl()))
    assert new != first
    snaps = lake.list_snapshots(spark, sample_table)
    assert [s.snapshot_id for s in snaps] == [first, new]
    assert snaps[-1].parent_id == first and snaps[-1].is_current
    assert snaps[-1].operation == "append" and snaps[-1].added_records == 25
    assert snaps[-1].total_records == len(bank_sample) + 25

    added = lake.read_added(spark, sample_table, first, new).toPandas()
    assert len(added) == 25
    assert sorted(added["balance"]) == sorted(batch["balance"])
    assert len(lake.read_pandas(sample_table)) == len(bank_sample) + 25


def test_time_travel_and_rollback(spark, sample_table, bank_sample: pd.DataFrame):
    first = lake.current_snapshot_id(spark, sample_table)
    lake.append(spark, sample_table, spark.createDataFrame(bank_sample.head(10), schema=spark_ddl()))
    assert lake.read_table(spark, sample_table, first).count() == len(bank_sample)
    assert len(lake.read_pandas(sample_table, first)) == len(bank_sample)

    lake.rollback(spark, sample_table, first)
    assert lake.current_snapshot_id(spark, sample_table) == first
    assert lake.read_table(spark, sample_table).count() == len(bank_sample)
    assert len(lake.read_pandas(sample_table)) == len(bank_sample)
    current = [s for s in lake.list_snapshots(spark, sample_table) if s.is_current]
    assert [s.snapshot_id for s in current] == [first]


def test_create_or_replace_adds_a_snapshot_with_new_content(spark, sample_table, bank_sample: pd.DataFrame):
    before = lake.list_snapshots(spark, sample_table)
    lake.create_or_replace(spark, sample_table, spark.createDataFrame(bank_sample.head(7), schema=spark_ddl()))
    assert lake.read_table(spark, sample_table).count() == 7
    assert len(lake.list_snapshots(spark, sample_table)) == len(before) + 1


def test_unknown_snapshot_and_missing_table_name_the_fix(spark, sample_table, table_settings):
    with pytest.raises(lake.LakeError, match="python -m lib.lake snapshots"):
        lake.read_table(spark, sample_table, 12345)
    import dataclasses

    missing = dataclasses.replace(table_settings, user="nobody_here")
    with pytest.raises(lake.LakeError, match="run 01_write_to_dl.py first"):
        lake.read_table(spark, missing)
    with pytest.raises(lake.LakeError, match="run 01_write_to_dl.py first"):
        lake.read_pandas(missing)


def test_spark_conf_honours_overrides(settings, tmp_path):
    import dataclasses

    conf_file = tmp_path / "spark.conf"
    conf_file.write_text("# comment\nspark.executor.cores 3\nspark.sql.shuffle.partitions=8\n")
    rest = dataclasses.replace(
        settings,
        catalog_type="rest",
        catalog_uri="http://catalog:8181",
        spark_conf_file=conf_file,
        spark_conf={"spark.driver.memory": "1g"},
    )
    conf = lake.spark_conf(rest)
    assert conf["spark.sql.catalog.lake.type"] == "rest"
    assert conf["spark.sql.catalog.lake.uri"] == "http://catalog:8181"
    assert conf["spark.executor.cores"] == "3"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.driver.memory"] == "1g"
    assert conf["spark.jars"].endswith("iceberg-spark-runtime-3.5_2.12-1.9.2.jar")


def _snapshot_facts(snapshots: list[lake.Snapshot]) -> list[tuple]:
    return [
        (s.snapshot_id, s.parent_id, s.operation, s.total_records, s.added_records, s.is_current) for s in snapshots
    ]


def test_read_snapshots_without_spark_matches_spark(spark, sample_table, bank_sample: pd.DataFrame):
    first = lake.current_snapshot_id(spark, sample_table)
    lake.append(spark, sample_table, spark.createDataFrame(bank_sample.head(10), schema=spark_ddl()))
    assert _snapshot_facts(lake.read_snapshots(sample_table)) == _snapshot_facts(
        lake.list_snapshots(spark, sample_table)
    )
    lake.rollback(spark, sample_table, first)  # the current snapshot is no longer the newest
    jvm_free = lake.read_snapshots(sample_table)
    assert _snapshot_facts(jvm_free) == _snapshot_facts(lake.list_snapshots(spark, sample_table))
    assert [s.snapshot_id for s in jvm_free if s.is_current] == [first]
    assert jvm_free[-1].total_records == len(bank_sample) + 10 and jvm_free[-1].operation == "append"


def test_read_snapshots_refuses_catalogs_it_cannot_read_and_missing_tables(table_settings):
    import dataclasses

    with pytest.raises(lake.LakeError, match="ICEBERG_CATALOG_TYPE=hive is not read without Spark"):
        lake.read_snapshots(dataclasses.replace(table_settings, catalog_type="hive"))
    with pytest.raises(lake.LakeError, match="run 01_write_to_dl.py first"):
        lake.read_snapshots(dataclasses.replace(table_settings, user="nobody_here"))


@pytest.mark.slow
def test_snapshots_cli_starts_no_jvm(spark, sample_table, bank_sample: pd.DataFrame, tmp_path):
    """`python -m lib.lake snapshots` in a process where importing pyspark fails: it must not need it."""
    import os
    import subprocess
    import sys

    from lib.config import PROJECT_ROOT

    lake.append(spark, sample_table, spark.createDataFrame(bank_sample.head(5), schema=spark_ddl()))
    expected = lake.list_snapshots(spark, sample_table)
    blocker = tmp_path / "no_spark" / "pyspark"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyspark is blocked: this command must not start a JVM')\n")
    env = {
        **os.environ, "PYTHONPATH": str(blocker.parent), "PROJECT_ROOT": str(sample_table.root),
        "PROJECT_OWNER": sample_table.user, "JAVA_HOME": str(tmp_path / "no_java"),
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "lib.lake", "snapshots"], cwd=PROJECT_ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"table {sample_table.table_ident}"
    rows = [line.split() for line in lines[2:-1]]
    current = [r for r in rows if r[0] == "*"]
    assert len(rows) == len(expected) == 2 and len(current) == 1
    assert [int(r[-2]) for r in rows] == [s.total_records for s in expected]
    assert int(current[0][1]) == expected[-1].snapshot_id
    assert str(expected[0].snapshot_id) in lines[2]


def test_spark_session_leaves_a_session_it_did_not_start_running(spark, table_settings):
    """A caller's (a notebook's, a test's) session is used by `spark_session` and not stopped by it."""
    with lake.spark_session(table_settings) as inner:
        assert inner is spark
    assert spark.range(3).count() == 3
