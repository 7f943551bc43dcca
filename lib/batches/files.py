"""Batch files: the UCI-format CSV a batch is read from and saved as, and the latest-batch pointer.

`--from-file` reads a CSV; every appended batch is saved as one; the pointer names the table's
latest batch, which 08 replays.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from lib.batches.validation import MAX_EXAMPLES, BatchError
from lib.config import Settings
from lib.features import NUMERIC, RAW_COLUMNS
from lib.fileio import atomic_write_text

_INT64_TEXT = r"-?[0-9]{1,18}"  # surely fits int64; longer integers stay text and fail the range check


def read_batch_csv(path: Path) -> pd.DataFrame:
    """Read a UCI-format (';'-separated, UTF-8, optional BOM, LF or CRLF) CSV for validation.

    Every field is read as text first (Python's csv module, strict quoting) and converted
    explicitly: an integer column becomes int64 only when every value is a plain ASCII integer of
    at most 18 digits (so it always fits); anything else stays text for `validate_batch` to name.
    Empty fields are nulls. Columns may come in any order. File-level problems (not UTF-8, broken
    quoting, a field over the csv module's size limit, rows with more or fewer fields than the
    header, duplicate headers, no header) raise BatchError: the whole file is rejected, never
    part of it.
    """
    if not path.is_file():
        raise BatchError(f"batch file {path} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh, delimiter=";", strict=True) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BatchError(f"batch file {path} is not a readable ';'-separated UTF-8 CSV: {exc}") from exc
    except OSError as exc:
        raise BatchError(f"batch file {path} cannot be read: {exc.strerror or exc}") from exc
    if not rows:
        raise BatchError(f"batch file {path} is empty: it needs a header line and at least one row")
    header, body = rows[0], rows[1:]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise BatchError(f"batch file {path} names column(s) more than once: {', '.join(map(repr, duplicates))}")
    ragged = [(n, len(row)) for n, row in enumerate(body, start=2) if len(row) != len(header)]
    if ragged:
        where = ", ".join(f"line {n} has {k}" for n, k in ragged[:MAX_EXAMPLES])
        raise BatchError(
            f"batch file {path}: {len(ragged)} row(s) do not have the header's {len(header)} fields ({where})"
        )
    cells = [[None if value == "" else value for value in row] for row in body]
    raw = pd.DataFrame(cells, columns=header, dtype=object)
    if sorted(raw.columns) == sorted(RAW_COLUMNS):
        raw = raw.loc[:, list(RAW_COLUMNS)]
    for col in (c for c in NUMERIC if c in raw.columns):
        values = raw[col]
        present = values.dropna()
        if present.str.fullmatch(_INT64_TEXT).all():
            ints = [None if v is None else int(v) for v in values]
            raw[col] = pd.array(ints, dtype="int64" if len(present) == len(values) else "Int64")
    return raw


def write_batch_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write a batch atomically in the UCI format (';'-separated, text quoted).

    That is the format `--from-file` and lib.dataset.read_csv read back unchanged.
    """
    text = df.loc[:, list(RAW_COLUMNS)].to_csv(sep=";", index=False, quoting=csv.QUOTE_NONNUMERIC)
    atomic_write_text(path, text)
    return path


def latest_pointer(settings: Settings) -> Path:
    """A small JSON file naming the table's latest batch (one per table: users can share a root)."""
    return settings.batches_dir / f"latest_{settings.table_name}.json"


def latest_batch_path(settings: Settings) -> Path:
    """The CSV of the most recently appended batch (for the traffic simulator)."""
    pointer = latest_pointer(settings)
    if not pointer.is_file():
        raise BatchError(f"no batch recorded in {settings.batches_dir}: run 05_newbatch.py first")
    try:
        path = settings.batches_dir / json.loads(pointer.read_text())["path"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BatchError(f"{pointer} is corrupt ({exc}): run 05_newbatch.py again") from exc
    if not path.is_file():
        raise BatchError(f"latest batch {path} is missing: run 05_newbatch.py first")
    return path
