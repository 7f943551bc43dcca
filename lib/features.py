"""The one definition of the data: raw schema, known categories, target and model features.

Training, serving, simulation, batch validation and monitoring all import this module, so a
column added or a category renamed changes everywhere at once. Encoding needs no fitted state:
the category vocabularies are fixed here (from the UCI documentation), so the encoder the model
uses in serving is the same code and the same mapping as in training. A category the vocabulary
does not know becomes a missing value, which XGBoost routes down its learned default branch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Column order as in the UCI CSV (bank-full.csv).
RAW_COLUMNS: tuple[str, ...] = (
    "age", "job", "marital", "education", "default", "balance", "housing", "loan", "contact",
    "day", "month", "duration", "campaign", "pdays", "previous", "poutcome", "y",
)  # fmt: skip
NUMERIC: tuple[str, ...] = ("age", "balance", "day", "duration", "campaign", "pdays", "previous")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "job": (
        "admin.",
        "blue-collar",
        "entrepreneur",
        "housemaid",
        "management",
        "retired",
        "self-employed",
        "services",
        "student",
        "technician",
        "unemployed",
        "unknown",
    ),  # fmt: skip
    "marital": ("divorced", "married", "single"),
    "education": ("primary", "secondary", "tertiary", "unknown"),
    "default": ("no", "yes"),
    "housing": ("no", "yes"),
    "loan": ("no", "yes"),
    "contact": ("cellular", "telephone", "unknown"),
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "poutcome": ("failure", "other", "success", "unknown"),
}
CATEGORICAL: tuple[str, ...] = tuple(CATEGORIES)
TARGET = "y"
TARGET_VALUES: dict[str, int] = {"no": 0, "yes": 1}
LEAKY = "duration"  # known only after the call ends (UCI notes): benchmark setting only

# Value ranges a real record can take; batches outside them are rejected before any commit.
NUMERIC_RANGES: dict[str, tuple[int, int]] = {
    "age": (18, 120),
    "balance": (-1_000_000, 10_000_000),
    "day": (1, 31),
    "duration": (0, 100_000),
    "campaign": (1, 1_000),
    "pdays": (-1, 10_000),
    "previous": (0, 10_000),
}


class FeatureError(ValueError):
    """A record does not match the feature definition; the message names the field."""


def spark_ddl() -> str:
    """The raw table schema as a Spark DDL string: integers as int, text as string."""
    return ", ".join(f"`{c}` {'int' if c in NUMERIC else 'string'}" for c in RAW_COLUMNS)


def pandas_dtypes() -> dict[str, str]:
    """Raw dtypes for pandas, independent of the pandas version's default string dtype."""
    return {c: ("int64" if c in NUMERIC else "object") for c in RAW_COLUMNS}


@dataclass(frozen=True)
class FeatureSet:
    """Which raw columns the model sees; `include_duration` reproduces the seed's leaky setup."""

    include_duration: bool = False

    @property
    def numeric(self) -> tuple[str, ...]:
        """Numeric model inputs; `duration` only when asked for, since it is known only after the call."""
        return _numeric(self.include_duration)

    @property
    def categorical(self) -> tuple[str, ...]:
        """Categorical model inputs, encoded as codes of the fixed CATEGORIES lists."""
        return CATEGORICAL

    @property
    def columns(self) -> tuple[str, ...]:
        """Model input columns in raw-file order."""
        return _columns(self.include_duration)

    @property
    def feature_types(self) -> list[str]:
        """XGBoost feature types: 'q' quantitative, 'c' categorical (codes)."""
        return ["c" if c in CATEGORIES else "q" for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form logged with the model and the drift profile, so both rebuild the same inputs."""
        return {"include_duration": self.include_duration, "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSet:
        """Rebuild from `to_dict`'s output; the columns are derived again, not trusted from the file."""
        return cls(include_duration=bool(data["include_duration"]))


# Computed once per setting: the server reads them for every record it checks and encodes.
@functools.cache
def _numeric(include_duration: bool) -> tuple[str, ...]:
    return tuple(c for c in NUMERIC if include_duration or c != LEAKY)


@functools.cache
def _columns(include_duration: bool) -> tuple[str, ...]:
    wanted = set(_numeric(include_duration)) | set(CATEGORICAL)
    return tuple(c for c in RAW_COLUMNS if c in wanted)


_CODES: dict[str, dict[str, float]] = {
    col: {value: float(i) for i, value in enumerate(values)} for col, values in CATEGORIES.items()
}


def encode_frame(df: pd.DataFrame, features: FeatureSet) -> np.ndarray:
    """Raw columns → float32 matrix: numerics as numbers, categories as codes, unknown → NaN."""
    missing = [c for c in features.columns if c not in df.columns]
    if missing:
        raise FeatureError(f"missing column(s): {', '.join(missing)}")
    out = np.empty((len(df), len(features.columns)), dtype=np.float32)
    for j, col in enumerate(features.columns):
        if col in CATEGORIES:
            out[:, j] = df[col].astype("object").map(_CODES[col]).to_numpy(dtype=np.float32)
        else:
            out[:, j] = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=np.float32)
    return out


def encode_records(records: Sequence[Mapping[str, Any]], features: FeatureSet) -> np.ndarray:
    """The serving fast path: validated dict records → the same matrix as `encode_frame`."""
    cols = features.columns
    out = np.empty((len(records), len(cols)), dtype=np.float32)
    for i, rec in enumerate(records):
        row = out[i]
        for j, col in enumerate(cols):
            codes = _CODES.get(col)
            value = rec[col]
            row[j] = codes.get(value, math.nan) if codes is not None else value
    return out


def validate_record(record: Mapping[str, Any], features: FeatureSet) -> dict[str, Any]:
    """Check one raw record against the feature set; return it restricted to model columns.

    Extra raw columns (e.g. `y`, or `duration` for a model that ignores it) are dropped; fields
    outside the raw schema are an error so that typos do not silently become missing values.
    """
    if not isinstance(record, Mapping):
        raise FeatureError("each record must be a JSON object of field: value")
    unknown = [k for k in record if k not in RAW_COLUMNS]
    if unknown:
        raise FeatureError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    clean: dict[str, Any] = {}
    for col in features.columns:
        if col not in record:
            raise FeatureError(f"missing field: {col}")
        value = record[col]
        if col in CATEGORIES:
            if not isinstance(value, str):
                raise FeatureError(f"field {col} must be a string, got {type(value).__name__}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FeatureError(f"field {col} must be a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise FeatureError(f"field {col} must be a finite number")
            if value != int(value):
                raise FeatureError(f"field {col} must be an integer, got {value}")
        clean[col] = value
    return clean


def labels_to_int(values: Iterable[str]) -> np.ndarray:
    """Map the target's yes/no strings to 1/0; anything else is an error."""
    arr = np.asarray(list(values), dtype=object)
    out = np.empty(len(arr), dtype=np.int8)
    for i, v in enumerate(arr):
        if v not in TARGET_VALUES:
            raise FeatureError(f"target {TARGET!r} must be 'yes' or 'no', got {v!r}")
        out[i] = TARGET_VALUES[v]
    return out


def input_example(df: pd.DataFrame, features: FeatureSet, n: int = 2) -> pd.DataFrame:
    """A few raw rows restricted to model columns, typed as a request would send them."""
    return (
        df.loc[:, list(features.columns)]
        .head(n)
        .astype({c: "int64" if c in NUMERIC else "object" for c in features.columns})
    )
