"""The campaign's economics of the champion, logged to its MLflow run: what the gains chart is drawn from.

`campaign_economics` scores the held-out rows the champion did not train on
(`lib.registry.holdout_rows`) and picks the profit-optimal cut-off (`lib.economics`);
`log_economics` writes the metrics (`econ_*`), the artifacts `economics/economics.json` and
`economics/gains.png` to the champion's run, and the version tag `decision_threshold` the model
server decides at; `load_economics` reads them back (notebook 09, the web app).
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config import Settings
from lib.economics import CampaignEconomics, EconomicsReport, evaluate_campaign, plot_gains
from lib.features import TARGET, labels_to_int

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lib.registry import VersionInfo
    from lib.scoring.scorer import ChampionModel

THRESHOLD_TAG = "decision_threshold"  # the model-version tag the server's decision reads
ECONOMICS_DIR = "economics"
ECONOMICS_JSON = "economics.json"
GAINS_PNG = "gains.png"


def campaign_economics(
    spark: SparkSession | None, settings: Settings, champion: ChampionModel, economics: CampaignEconomics
) -> tuple[EconomicsReport, int]:
    """Cut-off, lift/gains and profit of the champion on rows it did not train on; returns (report, their snapshot).

    With `spark` None the lake picks the engine: pyiceberg (no Spark job) for a table of pandas size.
    """
    from lib.registry import holdout_rows

    holdout = holdout_rows(spark, settings, [champion.info])
    labels = labels_to_int(holdout.frame[TARGET])
    proba = champion.model.predict(None, holdout.frame)["probability"].to_numpy()
    return evaluate_campaign(labels, proba, economics), int(holdout.snapshot_id)


def log_economics(settings: Settings, info: VersionInfo, report: EconomicsReport, holdout_snapshot: int) -> None:
    """Metrics and a JSON + PNG artifact on the champion's run; the cut-off as the version tag the server reads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.entities import Metric

    from lib.tracking import configure_mlflow, quiet_mlflow

    client = configure_mlflow(settings)
    now = int(time.time() * 1000)
    cut = report.cutoff
    metrics = [
        Metric("econ_cutoff", cut.threshold, now, 0),
        Metric("econ_profit", cut.profit, now, 0),
        Metric("econ_share_called", cut.share_called, now, 0),
        Metric("econ_precision", cut.precision, now, 0),
        Metric("econ_recall", cut.recall, now, 0),
        Metric("econ_lift_decile_1", float(report.lift["lift"].iloc[0]), now, 0),
    ]
    for row in report.lift.itertuples():
        metrics.append(Metric("econ_lift", float(row.lift), now, int(row.decile)))
        metrics.append(Metric("econ_cumulative_gain", float(row.cumulative_gain), now, int(row.decile)))
    client.log_batch(info.run_id, metrics=metrics)
    data = {**report.to_dict(), "model_name": info.name, "model_version": info.version,
            "holdout_snapshot_id": holdout_snapshot}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="economics-") as tmp:
        Path(tmp, ECONOMICS_JSON).write_text(json.dumps(data, indent=2, default=float))
        fig = plot_gains(report, title=f"{info.name} v{info.version} on {cut.rows:,} held-out rows")
        fig.savefig(Path(tmp, GAINS_PNG), format="png", dpi=110)
        plt.close(fig)
        with quiet_mlflow():
            client.log_artifacts(info.run_id, tmp, artifact_path=ECONOMICS_DIR)
    tags = {
        THRESHOLD_TAG: repr(cut.threshold),
        "economics.cost_per_call": f"{report.economics.cost_per_call:g}",
        "economics.value_per_deposit": f"{report.economics.value_per_deposit:g}",
        "economics.expected_profit": f"{cut.profit:.2f}",
        "economics.holdout_rows": str(cut.rows),
        "economics.holdout_snapshot_id": str(holdout_snapshot),
        "economics.computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(info.name, info.version, key, value)


def load_economics(settings: Settings, version: str | None = None) -> tuple[VersionInfo, EconomicsReport] | None:
    """The economics logged by 10 for `version` (default: the champion); None when 10 has not run for it."""
    import mlflow

    from lib.registry import describe, require_champion
    from lib.tracking import configure_mlflow, quiet_mlflow

    client = configure_mlflow(settings)
    info = require_champion(settings) if version is None else describe(settings, version)
    names = {Path(a.path).name for a in client.list_artifacts(info.run_id, ECONOMICS_DIR)}
    if ECONOMICS_JSON not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="economics-") as tmp:
        with quiet_mlflow():
            path = mlflow.artifacts.download_artifacts(
                run_id=info.run_id, artifact_path=f"{ECONOMICS_DIR}/{ECONOMICS_JSON}", dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )  # fmt: skip
        return info, EconomicsReport.from_dict(json.loads(Path(path).read_text()))
