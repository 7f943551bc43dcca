"""CSV → Iceberg: the ingestion behind 01_write_to_dl.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config import Settings
from lib.features import spark_ddl
from lib.lake import create_or_replace, read_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class IngestError(RuntimeError):
    """The input file is missing or does not parse with the raw schema."""


@dataclass(frozen=True)
class IngestResult:
    """What 01 wrote: the row count, the Iceberg snapshot it committed and the table read back."""

    rows: int
    snapshot_id: int
    table: DataFrame


def check_csv(path: str | Path) -> Path:
    """The input file, checked before anything starts Spark (a missing file fails in a second, not after a JVM)."""
    csv = Path(path)
    if not csv.is_file():
        raise IngestError(f"{path} not found: run 00_download.py first (or pass an existing file with --csv)")
    return csv


def read_bank_csv(spark: SparkSession, path: str | Path) -> DataFrame:
    """Parse a UCI-format CSV with the explicit raw schema; malformed rows fail the read."""
    check_csv(path)
    return (
        spark.read.schema(spark_ddl())
        .option("header", "true")
        .option("sep", ";")
        .option("quote", '"')
        .option("mode", "FAILFAST")
        .csv(str(Path(path).resolve()))
    )


def ingest_csv(spark: SparkSession, settings: Settings, path: str | Path) -> IngestResult:
    """Write the CSV as the table's whole content (create-or-replace, one snapshot)."""
    df = read_bank_csv(spark, path)
    snapshot_id = create_or_replace(spark, settings, df)
    table = read_table(spark, settings)
    return IngestResult(rows=table.count(), snapshot_id=snapshot_id, table=table)
