"""Drift of the logged inputs and predictions against the training profile (pure functions).

PSI on the profile's own bins (lib.profile) plus a two-sample KS test for numeric columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from lib.monitoring import MonitoringError
from lib.profile import OTHER, bin_counts

EPSILON = 1e-4  # share given to an empty bin so PSI stays finite
# Added to every live bin count (Jeffreys prior): a window of ~150 requests leaves rare bins
# empty by chance, and EPSILON alone would turn each of them into a false drift signal.
LIVE_PSEUDO_COUNT = 0.5
PREDICTION_FEATURE = "probability"
DRIFT_COLUMNS = ("feature", "kind", "psi", "ks_stat", "ks_pvalue", "drifted")


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = EPSILON) -> float:
    """Population Stability Index of two distributions over the same bins (counts or shares).

    Each side is normalised to shares, empty bins get `eps` so the log stays finite.
    Rule of thumb: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or len(e) == 0:
        raise MonitoringError(f"PSI needs two equal-length bin vectors, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        raise MonitoringError("PSI needs at least one observation on each side")
    e = np.clip(e / e.sum(), eps, None)
    a = np.clip(a / a.sum(), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(values: Sequence[float], reference: Mapping[str, Any], eps: float = EPSILON) -> dict[str, float]:
    """Score drift of one numeric feature: PSI and a two-sample KS test against the reference.

    PSI uses the reference bins with the live counts smoothed; KS compares with the reference sample.
    """
    x = pd.to_numeric(pd.Series(values), errors="raise").dropna().to_numpy(dtype=float)
    if len(x) == 0:
        return {"psi": math.nan, "ks_stat": math.nan, "ks_pvalue": math.nan}
    live = np.asarray(bin_counts(x, reference["edges"]), dtype=float) + LIVE_PSEUDO_COUNT  # profile's binning
    score = psi(reference["counts"], live, eps)
    sample = np.asarray(reference.get("sample") or [], dtype=float)
    if len(sample):
        ks = ks_2samp(x, sample)
        ks_stat, ks_pvalue = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat = ks_pvalue = math.nan
    return {"psi": score, "ks_stat": ks_stat, "ks_pvalue": ks_pvalue}


def categorical_psi(values: Sequence[Any], frequencies: Mapping[str, float], eps: float = EPSILON) -> float:
    """PSI over the reference categories, live counts smoothed like numeric bins.

    A live value the reference does not list counts as `__other__` (as the profile files
    out-of-vocabulary training values); a reference share of zero becomes `eps`.
    """
    live = pd.Series(values).dropna().astype(str)
    live = live.where(live.isin(list(frequencies)), OTHER)
    current = live.value_counts()
    if current.empty:
        return math.nan
    categories = sorted(set(map(str, frequencies)) | set(current.index))
    expected = [float(frequencies.get(c, 0.0)) for c in categories]
    actual = [float(current.get(c, 0)) + LIVE_PSEUDO_COUNT for c in categories]
    return psi(expected, actual, eps)


def drift_table(df: pd.DataFrame, profile: Mapping[str, Any], threshold: float) -> pd.DataFrame:
    """Per-feature drift of the logged inputs (and predicted probabilities) against the profile.

    Columns: feature, kind (numeric / categorical / prediction), psi, ks_stat, ks_pvalue (NaN for
    categoricals), drifted (psi > threshold). Sorted by PSI, largest first.
    """
    rows: list[dict[str, Any]] = []
    numeric = profile.get("numeric") or {}
    categorical = profile.get("categorical") or {}
    missing = [c for c in [*numeric, *categorical] if c not in df.columns]
    if missing:
        raise MonitoringError(
            f"prediction log lacks profiled feature column(s): {', '.join(missing)}; "
            "the metrics store must log every raw model input"
        )
    for col, ref in numeric.items():
        rows.append({"feature": col, "kind": "numeric", **numeric_drift(df[col], ref)})
    for col, ref in categorical.items():
        score = categorical_psi(df[col], ref["frequencies"])
        rows.append({"feature": col, "kind": "categorical", "psi": score, "ks_stat": math.nan, "ks_pvalue": math.nan})
    if profile.get("prediction"):
        rows.append(
            {
                "feature": PREDICTION_FEATURE,
                "kind": "prediction",
                **numeric_drift(df["probability"], profile["prediction"]),
            }
        )
    out = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS[:-1]))
    out["drifted"] = out["psi"] > threshold
    return out.sort_values("psi", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
