"""JVM-free reads of the lake with pyiceberg: snapshots, the table as pandas, and which engine to read with.

pyiceberg opens the same table metadata Spark writes (a hadoop catalog's files directly; rest and
jdbc through their catalogs), so a read of a snapshot returns the same rows as Spark's without
starting a JVM (seconds saved in every script that only reads).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lib.config import ConfigError, Settings, sqlalchemy_catalog_url
from lib.lake.types import LakeError, Snapshot

if TYPE_CHECKING:
    import pandas as pd
    from pyiceberg.table import Table


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
    return [_snapshot(s, metadata.current_snapshot_id) for s in snapshots]


def _snapshot(s, current_id: int | None) -> Snapshot:  # s: a pyiceberg Snapshot
    return Snapshot(
        snapshot_id=s.snapshot_id,
        parent_id=s.parent_snapshot_id,
        committed_at=datetime.fromtimestamp(s.timestamp_ms / 1000, tz=timezone.utc).replace(tzinfo=None),
        operation=s.summary.operation.value if s.summary is not None else "",
        summary=dict(s.summary.additional_properties) if s.summary is not None else {},
        is_current=s.snapshot_id == current_id,
    )


def table_snapshot(settings: Settings, table: Table, snapshot_id: int | None = None) -> Any:
    """The pyiceberg snapshot `snapshot_id` (else the current one); a LakeError naming what is missing."""
    snap = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
    if snap is None:
        if snapshot_id is None:
            raise LakeError(f"table {settings.table_ident} has no snapshot yet")
        raise LakeError(
            f"snapshot {snapshot_id} not found in {settings.table_ident}: list them with `python -m lib.lake snapshots`"
        )
    return snap


def snapshot_and_rows(settings: Settings, snapshot_id: int | None = None) -> tuple[Snapshot, pd.DataFrame]:
    """The snapshot (`snapshot_id`, else the current one) and its rows as pandas, read in one table load.

    The JVM-free twin of Spark's `get_snapshot` + `read_table`, same errors, same rows.
    """
    table = open_table(settings)
    snap = table_snapshot(settings, table, snapshot_id)
    rows = table.scan(snapshot_id=snap.snapshot_id).to_pandas()
    return _snapshot(snap, table.metadata.current_snapshot_id), rows


# Catalog types whose tables `read_engine` may read with pyiceberg: hadoop (the metadata files),
# rest, and jdbc (pyiceberg's SQL catalog on the same database). hive needs Spark.
PYICEBERG_READ_CATALOGS = ("hadoop", "rest", "jdbc")
SPARK, PYICEBERG = "spark", "pyiceberg"


def metadata_table(settings: Settings) -> Table | None:
    """The table opened by pyiceberg for a metadata look-up; None when Spark must answer instead.

    None for a catalog pyiceberg does not read here (hive) or a table it cannot open: Spark's own
    read then reports what is wrong.
    """
    if settings.catalog_type not in PYICEBERG_READ_CATALOGS:
        return None
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return open_table(settings)
    except (OSError, NoSuchTableError, LakeError):
        return None


def read_engine(settings: Settings, snapshot_id: int | None = None) -> str:
    """Which engine should read the table (at `snapshot_id`, else now): "pyiceberg" or "spark".

    pyiceberg when the catalog is one it reads and the snapshot holds at most
    `settings.pyiceberg_max_rows` rows (Iceberg's `total-records`, from metadata alone): a
    pandas-sized read then skips the JVM start. Spark for hive catalogs, big tables, and when the
    table cannot be opened here (Spark then reports what is wrong).
    """
    table = metadata_table(settings) if settings.pyiceberg_max_rows > 0 else None
    if table is None:
        return SPARK
    snap = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
    if snap is None or snap.summary is None:
        return SPARK
    rows = int(snap.summary.additional_properties.get("total-records", -1))
    return PYICEBERG if 0 <= rows <= settings.pyiceberg_max_rows else SPARK


def read_pandas(settings: Settings, snapshot_id: int | None = None) -> pd.DataFrame:
    """The table as pandas at its current snapshot or at `snapshot_id`, read without Spark."""
    table = open_table(settings)
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise LakeError(f"snapshot {snapshot_id} not found in {settings.table_ident}")
    return table.scan(snapshot_id=snapshot_id).to_pandas()
