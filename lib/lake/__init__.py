"""The lakehouse: a Spark session with an Iceberg catalog, table helpers and a JVM-free reader.

The embedded default is a Hadoop (filesystem) catalog under `<root>/lakehouse/warehouse` on a
`local[*]` Spark; `SPARK_MASTER`, `ICEBERG_CATALOG_TYPE`, `ICEBERG_CATALOG_URI`, `ICEBERG_WAREHOUSE`
and `SPARK_CONF_*` point the same code at a cluster and a shared catalog.

    types     LakeError, Snapshot, format_snapshots
    spark     ensure_java, the Iceberg jar, spark_conf, get_spark, spark_session
    tables    Spark table operations: create_or_replace, append, snapshots, read_table, read_added, rollback
    reader    JVM-free reads with pyiceberg: open_table, read_snapshots, read_pandas, read_engine
    __main__  the CLI: `python -m lib.lake snapshots | rollback --to ID`

The names below are the package's public surface (`from lib.lake import ...` keeps working).
"""

from __future__ import annotations

from lib.lake.reader import (
    PYICEBERG_CATALOGS,
    PYICEBERG_READ_CATALOGS,
    _pyiceberg_catalog,
    open_table,
    pyiceberg_catalog_props,
    read_engine,
    read_pandas,
    read_snapshots,
)
from lib.lake.spark import (
    ICEBERG_MAVEN,
    _catalog_conf,
    ensure_java,
    get_spark,
    iceberg_jar,
    spark_conf,
    spark_session,
)
from lib.lake.tables import (
    append,
    create_or_replace,
    current_snapshot_id,
    get_snapshot,
    list_snapshots,
    read_added,
    read_known_snapshot,
    read_table,
    require_table,
    rollback,
    table_exists,
)
from lib.lake.types import LakeError, Snapshot, format_snapshots

__all__ = [
    "ICEBERG_MAVEN", "PYICEBERG_CATALOGS", "PYICEBERG_READ_CATALOGS", "LakeError", "Snapshot", "_catalog_conf",
    "_pyiceberg_catalog", "append", "create_or_replace", "current_snapshot_id", "ensure_java", "format_snapshots",
    "get_snapshot", "get_spark", "iceberg_jar", "list_snapshots", "open_table", "pyiceberg_catalog_props",
    "read_added", "read_engine", "read_known_snapshot", "read_pandas", "read_snapshots", "read_table",
    "require_table", "rollback", "spark_conf", "spark_session", "table_exists",
]  # fmt: skip
