"""Getting the UCI Bank Marketing files: download, unpack (plain or nested zip), validate.

Every path to `data/bank-full.csv` goes through the same validation, whether the zip came from
UCI or from the vendored copy, and files are written to a temporary name and renamed into place,
so an interrupted or invalid download never leaves a file that looks valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import shutil
import tempfile
import time
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.features import NUMERIC, RAW_COLUMNS, TARGET, TARGET_VALUES, pandas_dtypes

log = logging.getLogger(__name__)

FULL_CSV = "bank-full.csv"
MEMBERS = (FULL_CSV, "bank.csv", "bank-names.txt")
EXPECTED_ROWS = {FULL_CSV: 45_211, "bank.csv": 4_521}


class DatasetError(RuntimeError):
    """The data is missing, corrupt or not the UCI Bank Marketing files."""


@dataclass(frozen=True)
class CsvSummary:
    """A validated data file: row and positive counts and the sha256 the script prints for lineage."""

    path: Path
    rows: int
    positives: int
    sha256: str

    @property
    def positive_rate(self) -> float:
        """Share of `y = yes` rows; 0.0 for an empty file rather than a division error."""
        return self.positives / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class FetchResult:
    """Where the data came from (downloaded, the vendored copy or already on disk) and what it holds."""

    source: str  # "download", "vendored" or "existing"
    summary: CsvSummary
    note: str = ""


def validate_csv_bytes(content: bytes, name: str = FULL_CSV) -> tuple[int, int]:
    """Check header, column count, integer columns, target values and row count.

    Returns (rows, positives). Raises DatasetError with the first problem found.
    """
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text), delimiter=";", quotechar='"')
    header = next(reader, None)
    if header is None:
        raise DatasetError(f"{name}: file is empty")
    if tuple(header) != RAW_COLUMNS:
        raise DatasetError(f"{name}: unexpected header {header}; expected {list(RAW_COLUMNS)}")
    numeric_idx = [RAW_COLUMNS.index(c) for c in NUMERIC]
    target_idx = RAW_COLUMNS.index(TARGET)
    rows = positives = 0
    for lineno, row in enumerate(reader, start=2):
        if len(row) != len(RAW_COLUMNS):
            raise DatasetError(
                f"{name}: line {lineno} has {len(row)} fields, expected {len(RAW_COLUMNS)} (truncated or corrupt file)"
            )
        for i in numeric_idx:
            value = row[i]
            if not (value.lstrip("-").isdigit()):
                raise DatasetError(f"{name}: line {lineno} column {RAW_COLUMNS[i]} is not an integer: {value!r}")
        label = row[target_idx]
        if label not in TARGET_VALUES:
            raise DatasetError(f"{name}: line {lineno} target {TARGET!r} is {label!r}, expected yes/no")
        rows += 1
        positives += TARGET_VALUES[label]
    expected = EXPECTED_ROWS.get(name)
    if expected is not None and rows != expected:
        raise DatasetError(f"{name}: {rows} data rows, expected {expected} (truncated file?)")
    return rows, positives


def _open_bank_zip(blob: bytes) -> zipfile.ZipFile:
    """Open the UCI zip; the newer download nests `bank.zip` inside an outer archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as exc:
        raise DatasetError("the downloaded file is not a valid zip archive (corrupt download?)") from exc
    names = set(archive.namelist())
    if FULL_CSV in names:
        return archive
    nested = [n for n in names if Path(n).name == "bank.zip"]
    if nested:
        return _open_bank_zip(archive.read(nested[0]))
    raise DatasetError(f"zip holds neither {FULL_CSV} nor a nested bank.zip: {sorted(names)[:5]}")


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def extract_and_validate(blob: bytes, data_dir: Path) -> CsvSummary:
    """Validate every member first, then move them into `data_dir`: all or nothing."""
    try:
        archive = _open_bank_zip(blob)
        members = {name: archive.read(name) for name in MEMBERS if name in archive.namelist()}
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DatasetError(f"corrupt zip archive: {exc}") from exc
    rows, positives = validate_csv_bytes(members[FULL_CSV], FULL_CSV)
    if "bank.csv" in members:
        validate_csv_bytes(members["bank.csv"], "bank.csv")
    for name, content in members.items():
        _atomic_write(data_dir / name, content)
    return CsvSummary(
        path=data_dir / FULL_CSV,
        rows=rows,
        positives=positives,
        sha256=hashlib.sha256(members[FULL_CSV]).hexdigest(),
    )


def summarize_existing(path: Path) -> CsvSummary:
    """Validate a CSV already on disk; raises DatasetError if it is not intact."""
    content = path.read_bytes()
    rows, positives = validate_csv_bytes(content, path.name)
    return CsvSummary(path, rows, positives, hashlib.sha256(content).hexdigest())


def download(url: str, timeout: float = 30.0, retries: int = 3, backoff: float = 2.0) -> bytes:
    """Stream `url` to a temporary file and return its bytes; retry transient failures."""
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with (
                urllib.request.urlopen(url, timeout=timeout) as resp,  # https URL from config
                tempfile.TemporaryFile() as tmp,
            ):
                shutil.copyfileobj(resp, tmp, length=1 << 20)
                tmp.seek(0)
                return tmp.read()
        except (OSError, ValueError) as exc:
            last = exc
            log.info("download attempt %d/%d failed: %s", attempt, retries, exc)
            if attempt < retries:
                time.sleep(backoff * attempt)
    raise DatasetError(f"download of {url} failed after {retries} attempts: {last}")


def fetch(
    data_dir: Path,
    url: str,
    vendor_zip: Path,
    *,
    offline: bool = False,
    force: bool = False,
    retries: int = 3,
    timeout: float = 30.0,
) -> FetchResult:
    """Make sure `data_dir/bank-full.csv` is the valid UCI file, from the cheapest good source."""
    target = data_dir / FULL_CSV
    if target.exists() and not force:
        try:
            return FetchResult("existing", summarize_existing(target), "kept the valid file already present")
        except DatasetError as exc:
            log.info("existing %s is invalid (%s); fetching again", target, exc)
    note = ""
    if not offline:
        try:
            return FetchResult("download", extract_and_validate(download(url, timeout, retries), data_dir))
        except DatasetError as exc:
            note = f"download failed ({exc}); using the vendored copy {vendor_zip}"
    else:
        note = f"offline mode: using the vendored copy {vendor_zip}"
    if not vendor_zip.is_file():
        raise DatasetError(f"vendored copy {vendor_zip} is missing; restore it with `git checkout data/vendor`")
    return FetchResult("vendored", extract_and_validate(vendor_zip.read_bytes(), data_dir), note)


def read_csv(path: Path) -> pd.DataFrame:
    """bank-full style CSV → pandas with the raw dtypes (for tests, batches and tooling)."""
    return pd.read_csv(path, sep=";", dtype=pandas_dtypes())
