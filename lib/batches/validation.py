"""Is a batch a valid set of customer records? Checked against the raw schema and the feature definition.

Every batch, generated or read from a file, passes here before anything is written; a rejected
batch lists every problem at once and leaves the table untouched. Training data is held to the
same rules (`validate_training_data`).
"""

from __future__ import annotations

import pandas as pd

from lib.features import CATEGORIES, NUMERIC, NUMERIC_RANGES, RAW_COLUMNS, TARGET, TARGET_VALUES

MAX_EXAMPLES = 3
# An integer as a batch file may write it: ASCII digits only (`\\d` would admit other scripts' digits).
INTEGER_TEXT = r"-?[0-9]+"


class BatchError(ValueError):
    """A batch cannot be appended; the message lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


def _examples(values: pd.Series) -> str:
    uniq = pd.unique(values)[:MAX_EXAMPLES]
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in uniq)


def _numeric_problem(col: str, values: pd.Series, had_nulls: bool) -> str | None:
    """Type and range check of one numeric column (nulls already dropped and reported)."""
    if values.empty:
        return None  # all null: already reported
    if had_nulls and pd.api.types.is_float_dtype(values) and (values % 1 == 0).all():
        values = values.astype("int64")  # the nulls (reported) turned the int column into float
    low, high = NUMERIC_RANGES[col]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_integer_dtype(values):
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            text = values.astype(str)
            bad = values[~text.str.fullmatch(INTEGER_TEXT)]
            if len(bad):
                return f"{col}: wrong type, expected integer, got text (e.g. {_examples(bad)})"
            # integers as text (too long for int64): compare as Python ints, no int64 overflow
            outside = values[[not low <= int(v) <= high for v in text]]
            return f"{col}: {len(outside)} value(s) outside [{low}, {high}] (e.g. {_examples(outside)})"
        return f"{col}: wrong type, expected integer, got {values.dtype}"
    outside = values[(values < low) | (values > high)]
    if len(outside):
        return f"{col}: {len(outside)} value(s) outside [{low}, {high}] (e.g. {_examples(outside)})"
    return None


def _category_problem(col: str, values: pd.Series, allowed: tuple[str, ...], allow_new: bool) -> str | None:
    not_text = values[~values.map(lambda v: isinstance(v, str))]
    if len(not_text):
        n = len(not_text)
        return f"{col}: wrong type, expected text, got {n} non-text value(s) (e.g. {_examples(not_text)})"
    unknown = values[~values.isin(allowed)]
    if len(unknown) and not allow_new:
        return (
            f"{col}: {len(unknown)} row(s) with unknown category (e.g. {_examples(unknown)}); "
            f"known: {', '.join(allowed)}"
        )
    return None


def validate_batch(df: pd.DataFrame, allow_new_categories: bool = False) -> None:
    """Check a batch against the raw schema and the feature definition.

    Raises BatchError listing every problem at once (wrong type, unknown/missing column, unknown
    category, null, out-of-range, bad target value, empty).
    """
    problems: list[str] = []
    if df.empty:
        raise BatchError("batch rejected: it has no rows", ["empty batch"])
    unknown_cols = [str(c) for c in df.columns if c not in RAW_COLUMNS]
    missing_cols = [c for c in RAW_COLUMNS if c not in df.columns]
    if unknown_cols:
        hint = " (is the file ';'-separated like bank-full.csv?)" if len(df.columns) == 1 else ""
        problems.append(f"unknown column(s): {', '.join(unknown_cols)}{hint}")
    if missing_cols:
        problems.append(f"missing column(s): {', '.join(missing_cols)}")
    for col in (c for c in RAW_COLUMNS if c in df.columns):
        values = df[col]
        nulls = int(values.isna().sum())
        if nulls:
            problems.append(f"{col}: {nulls} null value(s)")
            values = values.dropna()
        if col in NUMERIC:
            problem = _numeric_problem(col, values, bool(nulls))
        elif col == TARGET:
            bad = values[~values.isin(list(TARGET_VALUES))]
            problem = f"{col}: {len(bad)} bad target value(s) (e.g. {_examples(bad)}); expected yes/no"
            problem = problem if len(bad) else None
        else:
            problem = _category_problem(col, values, CATEGORIES[col], allow_new_categories)
        if problem:
            problems.append(problem)
    if problems:
        listing = "; ".join(problems)
        hint = " (05's --allow-new-categories lets unknown categories through)" if "unknown category" in listing else ""
        raise BatchError(f"batch rejected ({len(df)} rows), nothing appended: {listing}{hint}", problems)


def validate_training_data(df: pd.DataFrame, where: str) -> None:
    """Refuse to retrain on data that 05 would have rejected.

    A category let in with --allow-new-categories would silently be treated as missing by the
    model. The message says how to get back to good data.
    """
    try:
        validate_batch(df)
    except BatchError as exc:
        listing = "; ".join(exc.problems)
        raise BatchError(
            f"training data {where} breaks the feature definition: {listing}. "
            "Find the last good snapshot (python -m lib.lake snapshots), roll back "
            "(python -m lib.lake rollback --to ID) or train on it (--snapshot ID)",
            exc.problems,
        ) from exc
