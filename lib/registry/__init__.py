"""The MLflow Model Registry side of deployment: versions, aliases, and the redeploy gate.

A deployment never names a version in configuration: the server serves `models:/<name>@champion`
and deploying means moving aliases. `champion` is what serves, `previous` is what served before
(the rollback target) and `challenger` marks a candidate under evaluation. Every version is
registered from the best run of an experiment and carries tags tracing it to that run, its
metrics, the Iceberg snapshot it was trained on and the git commit of the code.

Alias moves are ordered so that a process killed half-way always leaves a valid champion:
`previous` is written before `champion` moves, and `champion` moves in a single call.

    versions  VersionInfo, describe, get_alias, require_champion, register_run / register_best
    aliases   Promotion, set_alias, promote, undo_promotion, rollback
    holdout   HoldOut, holdout_rows, version_holdout (rows from the lake, read by Spark or pyiceberg)
    gate      GateResult, GateRejected, score_version, evaluate_gate

The names below are the package's public surface (`from lib.registry import ...` keeps working).
"""

from __future__ import annotations

from lib.metrics import DEFAULT_METRIC
from lib.registry.aliases import Promotion, promote, rollback, set_alias, undo_promotion
from lib.registry.gate import GateRejected, GateResult, evaluate_gate, score_version
from lib.registry.holdout import MIN_HOLDOUT_ROWS, HoldOut, holdout_rows, version_holdout
from lib.registry.versions import (
    CHALLENGER,
    CHAMPION,
    MODEL_ARTIFACT,
    MODEL_DESCRIPTION,
    PREVIOUS,
    RegistryError,
    VersionInfo,
    best_run_id,
    describe,
    get_alias,
    list_versions,
    register_best,
    register_run,
    require_champion,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "DEFAULT_METRIC", "MIN_HOLDOUT_ROWS", "MODEL_ARTIFACT", "MODEL_DESCRIPTION", "PREVIOUS",
    "GateRejected", "GateResult", "HoldOut", "Promotion", "RegistryError", "VersionInfo", "best_run_id", "describe",
    "evaluate_gate", "get_alias", "holdout_rows", "list_versions", "promote", "register_best", "register_run",
    "require_champion", "rollback", "score_version", "set_alias", "undo_promotion", "version_holdout",
]  # fmt: skip
