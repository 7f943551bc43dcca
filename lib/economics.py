"""The campaign's economics: which customers are worth a call, and how much better than random the ranking is.

A call costs `cost_per_call`; a customer who subscribes a term deposit is worth `value_per_deposit`.
Calling everyone whose probability is at least a cut-off earns (subscribers reached × value) −
(calls × cost) on rows whose outcome is known. The profit-optimal cut-off is the one that maximises
that on held-out rows the model never trained on; it replaces the fixed 0.5, which on a table with
~12% positives calls almost nobody.

Ranks and deciles are defined once here (`decile_of_rank`) and used by the Spark call list too:
rank 1 is the most likely subscriber, decile 1 the top tenth of the ranking.

Pure numpy/pandas (matplotlib only inside `plot_gains`), so it is unit-testable without Spark or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DECILES = 10


class EconomicsError(ValueError):
    """The economics cannot be computed from these inputs; the message says why."""


@dataclass(frozen=True)
class CampaignEconomics:
    """What one call costs and what one converted deposit is worth (same currency)."""

    cost_per_call: float
    value_per_deposit: float

    def __post_init__(self) -> None:
        for name in ("cost_per_call", "value_per_deposit"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise EconomicsError(f"{name} must be a positive number, got {value!r}")

    @property
    def break_even_probability(self) -> float:
        """The probability at which one call pays for itself (the optimum for a calibrated model)."""
        return self.cost_per_call / self.value_per_deposit


@dataclass(frozen=True)
class Cutoff:
    """The profit-optimal cut-off: call every customer with probability >= `threshold`."""

    threshold: float
    calls: int
    conversions: int
    profit: float
    rows: int
    positives: int

    @property
    def share_called(self) -> float:
        """Share of the rows the cut-off sends to a call."""
        return self.calls / self.rows

    @property
    def recall(self) -> float:
        """Share of all subscribers in the rows that the calls reach."""
        return self.conversions / self.positives if self.positives else math.nan

    @property
    def precision(self) -> float:
        """Share of the calls that end in a deposit (NaN when nobody is called)."""
        return self.conversions / self.calls if self.calls else math.nan


def _checked(labels: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise EconomicsError(f"labels and probabilities must be two equally long lists, got {y.shape} and {p.shape}")
    if len(y) == 0:
        raise EconomicsError("no rows: the economics need held-out rows with known outcomes")
    if not set(np.unique(y)) <= {0, 1}:
        raise EconomicsError("labels must be 0 or 1")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise EconomicsError("probabilities must be finite numbers in [0, 1]")
    return y, p


def rank_order(proba: np.ndarray) -> np.ndarray:
    """Row indices from most to least likely; ties keep input order (a stable sort), so ranks are a permutation."""
    return np.argsort(-np.asarray(proba, dtype=np.float64), kind="mergesort")


def decile_of_rank(rank: np.ndarray, rows: int) -> np.ndarray:
    """Decile 1..10 of 1-based ranks among `rows`: decile 1 is the top tenth.

    The Spark call list computes `floor((rank - 1) * 10 / rows) + 1`, the same formula.
    """
    return (np.asarray(rank, dtype=np.int64) - 1) * DECILES // rows + 1


def profit_curve(
    labels: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray, economics: CampaignEconomics
) -> pd.DataFrame:
    """Profit of calling everyone with probability >= each distinct threshold, highest threshold first.

    Customers with the same probability cannot be told apart by a cut-off, so tied rows enter the
    curve together: one point per distinct probability.
    """
    y, p = _checked(labels, proba)
    frame = pd.DataFrame({"p": p, "y": y}).groupby("p", sort=True)["y"].agg(["size", "sum"]).iloc[::-1]
    calls = frame["size"].cumsum().to_numpy()
    conversions = frame["sum"].cumsum().to_numpy()
    profit = conversions * economics.value_per_deposit - calls * economics.cost_per_call
    return pd.DataFrame(
        {
            "threshold": frame.index.to_numpy(dtype=np.float64),
            "calls": calls.astype(np.int64),
            "share_called": calls / len(y),
            "conversions": conversions.astype(np.int64),
            "profit": profit.astype(np.float64),
        }
    )


def optimal_cutoff(
    labels: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray, economics: CampaignEconomics
) -> Cutoff:
    """The cut-off with the highest profit on these rows (the highest threshold among equal profits: fewer calls).

    Raises EconomicsError when no cut-off makes a profit: then calling nobody is best and there is
    no threshold to recommend; the costs and values given are what to check.
    """
    curve = profit_curve(labels, proba, economics)
    best = int(np.argmax(curve["profit"].to_numpy()))  # first maximum = highest threshold
    row = curve.iloc[best]
    y = np.asarray(labels, dtype=np.int64)
    if row["profit"] <= 0:
        raise EconomicsError(
            f"no cut-off makes a profit on {len(y):,} held-out rows at cost {economics.cost_per_call:g} per call "
            f"and value {economics.value_per_deposit:g} per deposit: check the two amounts"
        )
    return Cutoff(
        threshold=float(row["threshold"]),
        calls=int(row["calls"]),
        conversions=int(row["conversions"]),
        profit=float(row["profit"]),
        rows=len(y),
        positives=int(y.sum()),
    )


def lift_table(labels: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Lift and cumulative gains by decile of the ranking (decile 1 = the most likely tenth).

    lift: the decile's subscriber rate over the overall rate (1.0 = no better than calling at random);
    cumulative_gain: share of all subscribers found by calling deciles 1..d.
    """
    y, p = _checked(labels, proba)
    if len(y) < DECILES:
        raise EconomicsError(f"need at least {DECILES} rows for deciles, got {len(y)}")
    positives = int(y.sum())
    if positives == 0:
        raise EconomicsError("no positive outcome among the rows: lift and gains are undefined")
    order = rank_order(p)
    deciles = decile_of_rank(np.arange(1, len(y) + 1), len(y))
    frame = pd.DataFrame({"decile": deciles, "y": y[order], "p": p[order]})
    table = frame.groupby("decile").agg(rows=("y", "size"), positives=("y", "sum"), min_probability=("p", "min"))
    table = table.reset_index()
    overall = positives / len(y)
    table["positive_rate"] = table["positives"] / table["rows"]
    table["lift"] = table["positive_rate"] / overall
    table["cumulative_rows"] = table["rows"].cumsum()
    table["cumulative_share"] = table["cumulative_rows"] / len(y)
    table["cumulative_gain"] = table["positives"].cumsum() / positives
    table["cumulative_lift"] = table["cumulative_gain"] / table["cumulative_share"]
    return table


@dataclass(frozen=True)
class EconomicsReport:
    """Everything logged to MLflow and drawn in notebook 09: inputs, cut-off, deciles, curve."""

    economics: CampaignEconomics
    cutoff: Cutoff
    lift: pd.DataFrame
    curve: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as logged to MLflow; the curve is thinned to keep the artifact small."""
        return {
            "cost_per_call": self.economics.cost_per_call,
            "value_per_deposit": self.economics.value_per_deposit,
            "break_even_probability": self.economics.break_even_probability,
            "cutoff": {
                "threshold": self.cutoff.threshold,
                "calls": self.cutoff.calls,
                "conversions": self.cutoff.conversions,
                "profit": self.cutoff.profit,
                "rows": self.cutoff.rows,
                "positives": self.cutoff.positives,
                "share_called": self.cutoff.share_called,
                "precision": self.cutoff.precision,
                "recall": self.cutoff.recall,
            },
            "lift": self.lift.to_dict(orient="records"),
            "profit_curve": thin_curve(self.curve).to_dict(orient="records"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EconomicsReport:
        """Rebuild a report from its logged JSON (`to_dict`'s output)."""
        cut = data["cutoff"]
        return cls(
            economics=CampaignEconomics(float(data["cost_per_call"]), float(data["value_per_deposit"])),
            cutoff=Cutoff(
                threshold=float(cut["threshold"]),
                calls=int(cut["calls"]),
                conversions=int(cut["conversions"]),
                profit=float(cut["profit"]),
                rows=int(cut["rows"]),
                positives=int(cut["positives"]),
            ),  # fmt: skip
            lift=pd.DataFrame(data["lift"]),
            curve=pd.DataFrame(data["profit_curve"]),
        )


def evaluate_campaign(
    labels: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray, economics: CampaignEconomics
) -> EconomicsReport:
    """Cut-off, lift/gains and profit curve of one model's probabilities on rows with known outcomes."""
    return EconomicsReport(
        economics=economics,
        cutoff=optimal_cutoff(labels, proba, economics),
        lift=lift_table(labels, proba),
        curve=profit_curve(labels, proba, economics),
    )


def thin_curve(curve: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """At most `points` evenly spaced rows of the curve plus its maximum (enough for a chart and a JSON artifact)."""
    if len(curve) <= points:
        return curve.reset_index(drop=True)
    keep = set(np.linspace(0, len(curve) - 1, points).round().astype(int)) | {int(np.argmax(curve["profit"]))}
    return curve.iloc[sorted(keep)].reset_index(drop=True)


def plot_gains(report: EconomicsReport, title: str = "") -> Figure:
    """Cumulative gains, lift by decile and the profit curve with the chosen cut-off, side by side."""
    import matplotlib.pyplot as plt

    fig, (gains, lift, profit) = plt.subplots(1, 3, figsize=(15, 4.2))
    share = np.concatenate([[0.0], report.lift["cumulative_share"].to_numpy()])
    gain = np.concatenate([[0.0], report.lift["cumulative_gain"].to_numpy()])
    gains.plot(share * 100, gain * 100, marker="o", label="model")
    gains.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random")
    gains.set(xlabel="customers called (%)", ylabel="subscribers reached (%)", title="cumulative gains")
    gains.legend(loc="lower right")
    lift.bar(report.lift["decile"], report.lift["lift"], color="tab:blue")
    lift.axhline(1.0, linestyle="--", color="grey")
    lift.set(xlabel="decile (1 = most likely)", ylabel="lift", title="lift by decile", xticks=range(1, DECILES + 1))
    curve = report.curve
    profit.plot(curve["share_called"] * 100, curve["profit"], color="tab:green")
    cut = report.cutoff
    profit.axvline(cut.share_called * 100, linestyle="--", color="tab:red",
                   label=f"cut-off {cut.threshold:.3f}: profit {cut.profit:,.0f}")  # fmt: skip
    profit.axhline(0.0, color="grey", linewidth=0.8)
    econ = report.economics
    title_profit = f"profit (cost {econ.cost_per_call:g}/call, value {econ.value_per_deposit:g}/deposit)"
    profit.set(xlabel="customers called (%)", ylabel="profit on held-out rows", title=title_profit)
    profit.legend(loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
