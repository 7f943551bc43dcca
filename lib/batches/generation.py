"""New customer batches made from the current table, and the drift scenarios that move them.

A generated batch bootstraps rows of the current table and perturbs the numbers by about ±10%
(as the lab's seed does), but keeps every value a valid record: integers stay integers, ranges
and the pdays/previous convention hold and categories come from the known vocabularies in
`lib.features`. Labels come with the source rows. Drift scenarios move one part of the
distribution far enough for monitoring to notice (PSI well above 0.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.batches.validation import BatchError
from lib.features import NUMERIC_RANGES, RAW_COLUMNS, pandas_dtypes

PERTURBATION = 0.10  # numeric values move by up to ±10%


def _scale(values: pd.Series, rng: np.random.Generator, spread: float = PERTURBATION) -> np.ndarray:
    """Multiply by a uniform factor in [1-spread, 1+spread] and round back to integers."""
    factors = rng.uniform(1.0 - spread, 1.0 + spread, len(values))
    return np.rint(values.to_numpy(dtype=np.float64) * factors).astype(np.int64)


def _clip(values: np.ndarray, column: str, low: int | None = None, high: int | None = None) -> np.ndarray:
    lo, hi = NUMERIC_RANGES[column]
    return np.clip(values, lo if low is None else low, hi if high is None else high)


def _perturb(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Perturb every numeric column by ±10% while keeping each record valid."""
    out = batch.copy()
    out["age"] = _clip(_scale(batch["age"], rng), "age", high=100)
    out["balance"] = _clip(_scale(batch["balance"], rng), "balance")
    out["day"] = _clip(_scale(batch["day"], rng), "day")
    out["duration"] = _clip(_scale(batch["duration"], rng), "duration")
    out["campaign"] = _clip(_scale(batch["campaign"], rng), "campaign")
    # pdays = -1 means "never contacted before" and then previous = 0: keep that convention.
    contacted = (batch["pdays"] != -1).to_numpy()
    out["pdays"] = np.where(contacted, _clip(_scale(batch["pdays"], rng), "pdays", low=1), -1)
    had_previous = (batch["previous"] > 0).to_numpy()
    out["previous"] = np.where(had_previous, _clip(_scale(batch["previous"], rng), "previous", low=1), 0)
    return out


def _drift_none(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return batch


def _drift_age(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    out["age"] = _clip(batch["age"].to_numpy() + rng.integers(12, 26, len(batch)), "age", high=100)
    return out


# The seed data is a May-heavy campaign; the drifted batch is an autumn/winter campaign.
_DRIFT_MONTHS = {"oct": 0.25, "nov": 0.15, "dec": 0.15, "jan": 0.15, "feb": 0.1, "mar": 0.1, "sep": 0.1}


def _drift_month(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    months = list(_DRIFT_MONTHS)
    probs = np.array(list(_DRIFT_MONTHS.values()))
    out["month"] = rng.choice(months, size=len(batch), p=probs / probs.sum())
    return out


def _drift_balance(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    boosted = batch["balance"].to_numpy() * rng.uniform(1.5, 3.0, len(batch)) + rng.integers(1_500, 6_000, len(batch))
    out["balance"] = _clip(np.rint(boosted).astype(np.int64), "balance")
    return out


def _drift_contacts(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    out["campaign"] = _clip(batch["campaign"].to_numpy() + rng.integers(2, 7, len(batch)), "campaign")
    # Half of the never-contacted customers now have a previous campaign behind them.
    fresh = (batch["pdays"] == -1).to_numpy() & (rng.random(len(batch)) < 0.5)
    n = int(fresh.sum())
    pdays = batch["pdays"].to_numpy().copy()
    previous = batch["previous"].to_numpy().copy()
    poutcome = batch["poutcome"].to_numpy(dtype=object).copy()
    pdays[fresh] = rng.integers(30, 400, n)
    previous[fresh] = rng.integers(1, 6, n)
    poutcome[fresh] = rng.choice(["failure", "other", "success"], size=n, p=[0.6, 0.25, 0.15])
    out["pdays"], out["previous"], out["poutcome"] = pdays, previous, poutcome
    return out


@dataclass(frozen=True)
class DriftScenario:
    """A named shift applied to a batch, with the columns monitoring should flag.

    `apply(batch, rng)` returns the shifted batch; `features` are the raw columns it moves.
    """

    description: str
    apply: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]
    features: tuple[str, ...] = ()


DRIFT_SCENARIOS: dict[str, DriftScenario] = {
    "none": DriftScenario("no drift: the batch looks like the current table", _drift_none),
    "age": DriftScenario("older customers: age +12..25 years", _drift_age, ("age",)),
    "month": DriftScenario(
        "another month mix: an autumn/winter campaign instead of May-heavy", _drift_month, ("month",)
    ),
    "balance": DriftScenario("higher balances: x1.5-3 plus 1,500-6,000 EUR", _drift_balance, ("balance",)),
    "contacts": DriftScenario(
        "more contacts: campaign +2..6, half of the never-contacted customers contacted before",
        _drift_contacts,
        ("campaign", "pdays", "previous", "poutcome"),
    ),
}


def drift_help() -> str:
    """One line per scenario, for --help texts."""
    return "; ".join(f"{name}: {s.description}" for name, s in DRIFT_SCENARIOS.items() if name != "none")


def generate_batch(source: pd.DataFrame, rows: int, seed: int, drift: str = "none") -> pd.DataFrame:
    """Bootstrap `rows` records from `source`, perturb numbers by ±10%, apply a drift scenario.

    The result has the raw columns in file order and the raw dtypes; the same seed gives the
    same batch.
    """
    if drift not in DRIFT_SCENARIOS:
        raise BatchError(f"unknown drift scenario {drift!r}; choose one of {', '.join(DRIFT_SCENARIOS)}")
    if rows < 1:
        raise BatchError(f"a batch needs at least one row, got rows={rows}")
    missing = [c for c in RAW_COLUMNS if c not in source.columns]
    if missing:
        raise BatchError(f"source data lacks column(s) {', '.join(missing)}")
    if source.empty:
        raise BatchError("the source table is empty: run 01_write_to_dl.py first")
    rng = np.random.default_rng(seed)
    picked = source.loc[:, list(RAW_COLUMNS)].iloc[rng.integers(0, len(source), rows)]
    batch = picked.reset_index(drop=True).astype(pandas_dtypes())
    batch = _perturb(batch, rng)
    batch = DRIFT_SCENARIOS[drift].apply(batch, rng)
    return batch.loc[:, list(RAW_COLUMNS)].astype(pandas_dtypes())
