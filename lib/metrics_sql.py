"""SQL building blocks the metrics store's aggregations need and SQLAlchemy lacks.

Time buckets have no portable SQL spelling (compiled per dialect here), and neither SQLite nor every
PostgreSQL query plan gives percentiles, so the latency query keeps the two ranked rows around each
percentile and `interpolated_percentiles` finishes the job as numpy's default ("linear") does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, literal_column
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

LATENCY_PERCENTILES = (50, 95, 99)
AGGREGATE_COLUMNS: tuple[str, ...] = (
    "bucket_start", "model_version", "requests", "labeled", "tp", "fp", "fn", "tn", "positives",
    "accuracy", "precision", "recall", "f1", "positive_rate",
    *(f"latency_p{q}_ms" for q in LATENCY_PERCENTILES),
)  # fmt: skip


def interpolated_percentiles(row: Sequence[Any] | None) -> dict[str, float]:
    """Interpolate each percentile between the two ranked rows the latency query kept."""
    if row is None:
        return {f"latency_p{q}_ms": math.nan for q in LATENCY_PERCENTILES}
    n, *around = row
    out = {}
    for i, q in enumerate(LATENCY_PERCENTILES):
        lo, hi = around[2 * i], around[2 * i + 1]
        steps = (int(n) - 1) * q
        frac = (steps - (steps // 100) * 100) / 100
        value = float(lo) if hi is None or frac == 0 else float(lo) + frac * (float(hi) - float(lo))
        out[f"latency_p{q}_ms"] = value
    return out


class EpochBucket(FunctionElement):
    """Start of the `seconds`-wide bucket holding a naive-UTC timestamp, as Unix seconds.

    Compiled per dialect (SQLite: strftime('%s'); PostgreSQL: EXTRACT(EPOCH)), since SQL has no
    portable spelling; a timestamp without time zone counts as UTC on both.
    """

    type = BigInteger()
    inherit_cache = True
    name = "epoch_bucket"

    def __init__(self, column: Any, seconds: int) -> None:
        self.seconds = int(seconds)
        # The width is a clause too, so it is part of SQLAlchemy's statement cache key: an attribute
        # alone is not, and a second width would reuse the first one's compiled SQL.
        super().__init__(column, literal_column(str(self.seconds)))


@compiles(EpochBucket, "sqlite")
def _epoch_bucket_sqlite(element: EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"((CAST(strftime('%s', {column}) AS INTEGER) / {element.seconds}) * {element.seconds})"


@compiles(EpochBucket, "postgresql")
def _epoch_bucket_postgresql(element: EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"(CAST(FLOOR(EXTRACT(EPOCH FROM {column}) / {element.seconds}) AS BIGINT) * {element.seconds})"


@compiles(EpochBucket)
def _epoch_bucket_other(element: EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"time buckets are implemented for SQLite and PostgreSQL, not {compiler.dialect.name}")
