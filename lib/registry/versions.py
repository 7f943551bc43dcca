"""Registered versions of the project's model: lookup, aliases read, and registration from a run.

A deployment never names a version in configuration: the server serves `models:/<name>@champion`.
Every version is registered from the best run of an experiment and carries tags tracing it to that
run, its metrics, the Iceberg snapshot it was trained on and the git commit of the code.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lib.config import Settings
from lib.metrics import DEFAULT_METRIC
from lib.tracking import configure_mlflow

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
MODEL_DESCRIPTION = (
    "Bank marketing campaign: probability that a contacted client subscribes a term deposit "
    "(XGBoost on the UCI bank-marketing table). Serve models:/{name}@champion."
)


class RegistryError(RuntimeError):
    """The registry cannot do what was asked; the message says what to run or fix."""


@dataclass(frozen=True)
class VersionInfo:
    """A registered version with the lineage tags that make it traceable."""

    name: str
    version: str
    run_id: str
    experiment: str
    snapshot_id: str
    git_commit: str
    metric_name: str
    metric_value: float
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        """The `models:/name/version` URI MLflow loads this version from."""
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def from_model_version(cls, mv: ModelVersion) -> VersionInfo:
        """Read a registry version with the lineage tags training set on it (metric, snapshot, commit)."""
        tags = dict(mv.tags or {})
        metric = tags.get("selection_metric", DEFAULT_METRIC)
        value = tags.get(f"metric.{metric}")
        return cls(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or tags.get("run_id", ""),
            experiment=tags.get("experiment", ""),
            snapshot_id=tags.get("iceberg_snapshot_id", ""),
            git_commit=tags.get("git_commit", ""),
            metric_name=metric,
            metric_value=float(value) if value is not None else math.nan,
            aliases=tuple(sorted(mv.aliases or ())),
            tags=tags,
        )


def _client(settings: Settings) -> MlflowClient:
    return configure_mlflow(settings)


def describe(settings: Settings, version: str | int) -> VersionInfo:
    """The registered version `version` of the project's model."""
    try:
        mv = _client(settings).get_model_version(settings.model_name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model {settings.model_name} has no version {version}") from exc
    return VersionInfo.from_model_version(mv)


def list_versions(settings: Settings, limit: int = 100) -> list[VersionInfo]:
    """The project model's registered versions, newest first, each with its aliases; [] before the first one."""
    client = _client(settings)
    name = settings.model_name
    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return []
        raise
    found = client.search_model_versions(f"name = '{name}'", max_results=limit, order_by=["version_number DESC"])
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    infos = [VersionInfo.from_model_version(mv) for mv in found]
    return [dataclasses.replace(i, aliases=tuple(sorted(by_version.get(i.version, ())))) for i in infos]


def get_alias(settings: Settings, alias: str) -> VersionInfo | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    client = _client(settings)
    try:
        mv = client.get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return VersionInfo.from_model_version(mv)


def require_champion(settings: Settings) -> VersionInfo:
    """The `champion` version; when there is none the RegistryError says to run 04 first."""
    champion = get_alias(settings, CHAMPION)
    if champion is None:
        raise RegistryError(f"model {settings.model_name} has no '{CHAMPION}' version: run 04_api_deployment.py first")
    return champion


def _logged_model_id(client: MlflowClient, run_id: str, experiment_id: str) -> str:
    models = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'",
        output_format="list",
    )
    if not models:
        raise RegistryError(f"run {run_id} has no logged model named '{MODEL_ARTIFACT}'")
    return max(models, key=lambda m: m.creation_timestamp).model_id


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=MODEL_DESCRIPTION.format(name=name))
        except MlflowException as exc:  # created concurrently by another deploy
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise


def register_run(settings: Settings, run_id: str, selection_metric: str = DEFAULT_METRIC) -> tuple[VersionInfo, bool]:
    """Register the run's model as a new version, or return the version already holding it.

    Returns (version, created). Re-registering the same run would only multiply identical
    versions, so a rerun of a deployment script reuses the existing one.
    """
    client = _client(settings)
    name = settings.model_name
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    _ensure_registered_model(client, name)
    existing = client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'")
    if existing:
        newest = max(existing, key=lambda mv: int(mv.version))
        return describe(settings, newest.version), False
    if selection_metric not in run.data.metrics:
        raise RegistryError(f"run {run_id} has no metric {selection_metric!r}")
    run_tags = run.data.tags
    tags: dict[str, Any] = {
        "run_id": run_id,
        "experiment": experiment,
        "selection_metric": selection_metric,
        "iceberg_snapshot_id": run_tags.get("iceberg_snapshot_id", ""),
        "table": run_tags.get("table", ""),
        "git_commit": run_tags.get("git_commit", ""),
    }
    tags.update({f"metric.{k}": f"{v:.6g}" for k, v in run.data.metrics.items() if k.startswith("test_")})
    model_id = _logged_model_id(client, run_id, run.info.experiment_id)
    mv = mlflow.register_model(f"models:/{model_id}", name, tags=tags)
    value = run.data.metrics[selection_metric]
    client.update_model_version(
        name,
        mv.version,
        description=(
            f"{selection_metric}={value:.4f}; run {run_id} of experiment {experiment}; trained on "
            f"Iceberg snapshot {tags['iceberg_snapshot_id'] or '?'} of {tags['table'] or '?'}; "
            f"code {tags['git_commit'] or '?'}"
        ),
    )
    log.info("registered %s version %s from run %s", name, mv.version, run_id)
    return describe(settings, mv.version), True


def best_run_id(
    settings: Settings, experiment_name: str, selection_metric: str = DEFAULT_METRIC,
    hint: str = "run 03_train.py first",
) -> str:  # fmt: skip
    """The best finished run of the experiment's newest grid; `hint` names the script that creates its runs."""
    from lib.training.errors import TrainingError
    from lib.training.results import best_run

    try:
        return best_run(settings, experiment_name, selection_metric=selection_metric, latest_grid=True).run_id
    except TrainingError as exc:
        raise RegistryError(f"no finished run with {selection_metric} in experiment {experiment_name}: {hint}") from exc


def register_best(
    settings: Settings,
    experiment_name: str,
    selection_metric: str = DEFAULT_METRIC,
    hint: str = "run 03_train.py first",
) -> VersionInfo:
    """Register (or reuse) the version holding the best run of `experiment_name`."""
    version, _ = register_run(
        settings, best_run_id(settings, experiment_name, selection_metric, hint), selection_metric
    )
    return version
