"""What the Explain page shows for one record: probability, decision and exact SHAP contributions.

The contributions are XGBoost's own TreeSHAP (`Booster.predict(..., pred_contribs=True)` through
`lib.model.BankModel.contributions`): exact Shapley values of the tree ensemble in log-odds, so the
bias plus every feature's contribution adds up to the logit of the probability. No `shap` package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lib.features import CATEGORIES, NUMERIC_RANGES, RAW_COLUMNS, TARGET
from lib.model import BankModel

BIAS = "bias"
_FIELD = re.compile(r"field(?:\(s\))?:? ([A-Za-z_][\w.-]*)")


@dataclass(frozen=True)
class Contribution:
    """One feature's value in the record and its SHAP contribution (log-odds)."""

    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """A scored record: probability, decision at `threshold`, and contributions largest first."""

    probability: float
    decision: int
    threshold: float
    base: float  # the bias: the model's log-odds before any feature is known
    contributions: tuple[Contribution, ...]

    @property
    def logit(self) -> float:
        """Base plus every contribution: the log-odds the probability comes from."""
        return self.base + sum(c.contribution for c in self.contributions)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the page draws from."""
        return {
            "probability": self.probability,
            "decision": self.decision,
            "threshold": self.threshold,
            "base": self.base,
            "logit": self.logit,
            "contributions": [
                {"feature": c.feature, "value": c.value, "contribution": c.contribution} for c in self.contributions
            ],
        }


def explain(model: BankModel, record: Mapping[str, Any], threshold: float) -> Explanation:
    """Score one validated record and explain it with the model's TreeSHAP contributions."""
    proba, decision = model.predict_records([record], threshold)
    contributions = dict(model.contributions([record])[0])
    base = contributions.pop(BIAS)
    ordered = sorted(contributions.items(), key=lambda item: -abs(item[1]))
    return Explanation(
        probability=float(proba[0]),
        decision=int(decision[0]),
        threshold=threshold,
        base=base,
        contributions=tuple(Contribution(name, record[name], value) for name, value in ordered),
    )


def sigmoid(logit: float) -> float:
    """Log-odds to probability (what the waterfall's total means)."""
    return 1.0 / (1.0 + math.exp(-logit))


def field_of(message: str) -> str | None:
    """The field a `lib.features.FeatureError` message names ("field age must …", "missing field: age")."""
    match = _FIELD.search(message)
    return match.group(1).rstrip(",") if match else None


def form_fields() -> list[dict[str, Any]]:
    """Every input field of a customer, from the one feature definition (the target is not an input).

    Categories come with their values, numbers with their allowed range.
    """
    fields: list[dict[str, Any]] = []
    for name in RAW_COLUMNS:
        if name == TARGET:
            continue
        if name in CATEGORIES:
            fields.append({"name": name, "kind": "category", "options": list(CATEGORIES[name])})
        else:
            low, high = NUMERIC_RANGES[name]
            fields.append({"name": name, "kind": "number", "min": low, "max": high})
    return fields
