"""The redeploy gate: score challenger and champion on the same held-out rows, record the verdict.

A failed check raises `GateRejected` (in `lib.serving.deploy`); overriding it is a flag that is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd

from lib.config import Settings
from lib.features import TARGET, labels_to_int
from lib.metrics import DEFAULT_METRIC, classification_metrics, higher_is_better
from lib.registry.holdout import HoldOut
from lib.registry.versions import RegistryError, VersionInfo, _client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    """The challenger-vs-champion comparison on the same held-out rows."""

    metric: str
    challenger_version: str
    champion_version: str
    challenger_value: float
    champion_value: float
    tolerance: float
    rows: int
    snapshot_id: str

    @property
    def lower_is_better(self) -> bool:
        """The comparison's direction, from the metric itself (e.g. log loss), never from a flag."""
        return not higher_is_better(self.metric)

    @property
    def delta(self) -> float:
        """Challenger minus champion (positive = challenger higher)."""
        return self.challenger_value - self.champion_value

    @property
    def passed(self) -> bool:
        """Not worse than the champion by more than the tolerance, in the metric's direction."""
        if self.lower_is_better:
            return self.challenger_value <= self.champion_value + self.tolerance
        return self.challenger_value >= self.champion_value - self.tolerance

    def describe(self) -> str:
        """One line for logs and the script summary: verdict, both values, delta, tolerance, rows used."""
        verdict = "passed" if self.passed else "REJECTED"
        return (
            f"gate {verdict}: {self.metric} challenger v{self.challenger_version} "
            f"{self.challenger_value:.4f} vs champion v{self.champion_version} {self.champion_value:.4f} "
            f"(delta {self.delta:+.4f}, tolerance {self.tolerance:g}) on {self.rows:,} held-out rows "
            f"of snapshot {self.snapshot_id}"
        )


class GateRejected(RegistryError):
    """The challenger is worse than the champion by more than the tolerance."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(f"{result.describe()}; champion unchanged (use --force to override)")
        self.result = result


def _eval_key(selection_metric: str) -> str:
    """Run metrics are logged as `test_<name>`; `lib.metrics.classification_metrics` returns `<name>`."""
    return selection_metric.removeprefix("test_")


def score_version(settings: Settings, version: str, frame: pd.DataFrame) -> Any:
    """Probabilities of a registered version for `frame`, through the standard pyfunc loader."""
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    columns = model.metadata.get_input_schema().input_names()
    return model.predict(frame.loc[:, columns])["probability"].to_numpy()


def evaluate_gate(
    settings: Settings,
    challenger: VersionInfo,
    champion: VersionInfo,
    holdout: HoldOut,
    selection_metric: str = DEFAULT_METRIC,
    tolerance: float = 0.01,
) -> GateResult:
    """Score both versions on the same held-out rows and record the outcome on the challenger."""
    if holdout.frame.empty:
        raise RegistryError(f"no held-out rows in snapshot {holdout.snapshot_id} of {holdout.table}")
    key = _eval_key(selection_metric)
    y = labels_to_int(holdout.frame[TARGET])
    values = {}
    for info in (challenger, champion):
        metrics = classification_metrics(y, score_version(settings, info.version, holdout.frame))
        if key not in metrics:
            raise RegistryError(f"selection metric {selection_metric!r} is not one of {', '.join(metrics)}")
        values[info.version] = float(metrics[key])
    result = GateResult(
        metric=selection_metric,
        challenger_version=challenger.version,
        champion_version=champion.version,
        challenger_value=values[challenger.version],
        champion_value=values[champion.version],
        tolerance=tolerance,
        rows=len(holdout.frame),
        snapshot_id=str(holdout.snapshot_id),
    )
    client = _client(settings)
    for key_, value in {
        "gate.metric": selection_metric,
        "gate.challenger_value": f"{result.challenger_value:.6f}",
        "gate.champion_value": f"{result.champion_value:.6f}",
        "gate.champion_version": champion.version,
        "gate.tolerance": f"{tolerance:g}",
        "gate.rows": str(result.rows),
        "gate.snapshot_id": result.snapshot_id,
        "gate.read_engine": holdout.engine,
        "gate.passed": str(result.passed).lower(),
    }.items():
        client.set_model_version_tag(settings.model_name, challenger.version, key_, value)
    log.info(result.describe())
    return result
