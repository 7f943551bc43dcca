"""What the Models page shows of a registered version: aliases, metrics, lineage, gate, threshold, economics.

All of it is read from the version's tags (set at registration by `lib.registry.register_run`,
by the redeploy gate `lib.registry.evaluate_gate` and by 10_batch_scoring.py) and its run's
lineage tags (`lib.training.lineage`); nothing is recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lib.metrics import DEFAULT_THRESHOLD
from lib.registry import GateResult, VersionInfo
from lib.serving.loader import THRESHOLD_TAG

RUN_LINEAGE = ("data_mode", "rows_train", "rows_test", "git_dirty", "iceberg_committed_at", "include_duration")


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def gate_of(info: VersionInfo) -> GateResult | None:
    """The gate's result as 07 logged it on this version (the challenger), or None if it never faced one."""
    tags = info.tags
    if "gate.metric" not in tags:
        return None
    challenger, champion = _number(tags.get("gate.challenger_value")), _number(tags.get("gate.champion_value"))
    tolerance, rows = _number(tags.get("gate.tolerance")), _number(tags.get("gate.rows"))
    if challenger is None or champion is None or tolerance is None or rows is None:
        return None
    return GateResult(
        metric=tags["gate.metric"],
        challenger_version=info.version,
        champion_version=tags.get("gate.champion_version", "?"),
        challenger_value=challenger,
        champion_value=champion,
        tolerance=tolerance,
        rows=int(rows),
        snapshot_id=tags.get("gate.snapshot_id", ""),
    )


def gate_dict(gate: GateResult) -> dict[str, Any]:
    """The gate's numbers and verdict for the page (direction from the metric, as the gate decides)."""
    return {
        "metric": gate.metric,
        "challenger_version": gate.challenger_version,
        "champion_version": gate.champion_version,
        "challenger_value": gate.challenger_value,
        "champion_value": gate.champion_value,
        "delta": gate.delta,
        "tolerance": gate.tolerance,
        "rows": gate.rows,
        "snapshot_id": gate.snapshot_id,
        "passed": gate.passed,
        "lower_is_better": gate.lower_is_better,
        "summary": gate.describe(),
    }


def version_row(info: VersionInfo, run_tags: Mapping[str, str]) -> dict[str, Any]:
    """One version as the Models page lists it; `run_tags` are its run's tags ({} if the run is gone)."""
    tags = info.tags
    metrics = {k.removeprefix("metric."): _number(v) for k, v in sorted(tags.items()) if k.startswith("metric.")}
    gate = gate_of(info)
    return {
        "version": info.version,
        "aliases": list(info.aliases),
        "selection_metric": info.metric_name,
        "selection_value": info.metric_value if math.isfinite(info.metric_value) else None,
        "metrics": metrics,
        "lineage": {
            "run_id": info.run_id,
            "experiment": info.experiment,
            "table": tags.get("table", ""),
            "snapshot_id": info.snapshot_id,
            "git_commit": info.git_commit,
            **{key: run_tags.get(key, "") for key in RUN_LINEAGE},
        },
        "gate": gate_dict(gate) if gate is not None else None,
        "threshold": _number(tags.get(THRESHOLD_TAG)) or DEFAULT_THRESHOLD,
        "threshold_source": THRESHOLD_TAG if THRESHOLD_TAG in tags else "default",
        "economics": {k.removeprefix("economics."): v for k, v in sorted(tags.items()) if k.startswith("economics.")},
        "events": {
            k: tags[k]
            for k in ("promoted_at", "promotion_forced", "rolled_back_at", "promotion_undone_at")
            if k in tags
        },  # fmt: skip
    }
