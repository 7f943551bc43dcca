"""New customer batches: generation, drift scenarios, validation, batch files and the one-commit append.

  validation  BatchError; validate_batch (schema + feature definition), validate_training_data
  generation  generate_batch (bootstrap + ±10%), DRIFT_SCENARIOS, drift_help
  files       read_batch_csv / write_batch_csv (UCI format), the latest-batch pointer
  append      append_batch (validate, one Iceberg commit, CSV copy), load_source, check_batch_in_table

Every batch, generated or read from a file, is validated against the table schema and the
feature definition before anything is written; a rejected batch leaves the table untouched.
The names below are the package's public surface; import them from `lib.batches`.
"""

from __future__ import annotations

from lib.batches.append import (
    APPEND_LOCK_TIMEOUT_S,
    AppendResult,
    append_batch,
    append_lock_path,
    check_batch_in_table,
    load_source,
)
from lib.batches.files import latest_batch_path, latest_pointer, read_batch_csv, write_batch_csv
from lib.batches.generation import DRIFT_SCENARIOS, PERTURBATION, DriftScenario, drift_help, generate_batch
from lib.batches.validation import INTEGER_TEXT, BatchError, validate_batch, validate_training_data

__all__ = [
    "APPEND_LOCK_TIMEOUT_S",
    "DRIFT_SCENARIOS",
    "INTEGER_TEXT",
    "PERTURBATION",
    "AppendResult",
    "BatchError",
    "DriftScenario",
    "append_batch",
    "append_lock_path",
    "check_batch_in_table",
    "drift_help",
    "generate_batch",
    "latest_batch_path",
    "latest_pointer",
    "load_source",
    "read_batch_csv",
    "validate_batch",
    "validate_training_data",
    "write_batch_csv",
]
