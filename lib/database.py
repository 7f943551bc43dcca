"""The SQL database behind the metrics store: one engine per URL, and tables created safely.

Every table kept there (the prediction log, ground truth, the jobs history) connects and creates its
schema through these two functions, so SQLite's WAL settings and PostgreSQL's creation lock apply
to all of them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@functools.cache
def get_engine(url: str) -> Engine:
    """One pooled engine per URL for the process; SQLite gets WAL so readers never block the writer.

    Shared by every table kept in the metrics database (prediction log, jobs history).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


# Any constant: the PostgreSQL advisory lock under which one process at a time creates tables.
_SCHEMA_LOCK_KEY = 0x62616E6B


def create_tables(engine: Engine, tables: MetaData) -> None:
    """Create the missing tables of `tables`, one process at a time on PostgreSQL.

    Two processes creating one table at the same moment (two New Batch jobs on a fresh metrics
    database) make PostgreSQL reject the second CREATE TABLE with a unique violation in its
    catalog, `checkfirst` notwithstanding; a transaction-scoped advisory lock orders them.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        tables.create_all(conn, checkfirst=True)
