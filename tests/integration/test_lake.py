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
