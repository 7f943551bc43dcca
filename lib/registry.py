"""The MLflow Model Registry side of deployment: versions, aliases, and the redeploy gate.

A deployment never names a version in configuration: the server serves `models:/<name>@champion`
and deploying means moving aliases. `champion` is what serves, `previous` is what served before
(the rollback target) and `challenger` marks a candidate under evaluation. Every version is
registered from the best run of an experiment and carries tags tracing it to that run, its
metrics, the Iceberg snapshot it was trained on and the git commit of the code.

Alias moves are ordered so that a process killed half-way always leaves a valid champion:
`previous` is written before `champion` moves, and `champion` moves in a single call.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lib import faults
from lib.config import DEFAULT_SEED, Settings
from lib.features import TARGET, labels_to_int
from lib.metrics import DEFAULT_METRIC, classification_metrics, higher_is_better
from lib.tracking import configure_mlflow

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lib.training.data import DataSlice

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


@dataclass(frozen=True)
class Promotion:
    """An alias move: what `champion` pointed at before and after."""

    before: VersionInfo | None
    after: VersionInfo

    @property
    def changed(self) -> bool:
        """Whether the alias actually moved (a first promotion always does)."""
        return self.before is None or self.before.version != self.after.version


@dataclass(frozen=True)
class HoldOut:
    """Rows neither model was trained on, from a named Iceberg snapshot."""

    frame: pd.DataFrame
    snapshot_id: int | str
    table: str


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


def _client(settings: Settings) -> MlflowClient:
    return configure_mlflow(settings)


def _eval_key(selection_metric: str) -> str:
    """Run metrics are logged as `test_<name>`; `lib.metrics.classification_metrics` returns `<name>`."""
    return selection_metric.removeprefix("test_")


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


def set_alias(settings: Settings, alias: str, version: str | int) -> None:
    """Point `alias` of the configured model at `version`, moving it if it was elsewhere."""
    _client(settings).set_registered_model_alias(settings.model_name, alias, str(version))


def _delete_alias(client: MlflowClient, name: str, alias: str) -> None:
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def promote(settings: Settings, version: str | int, *, forced: bool = False) -> Promotion:
    """Make `version` the champion; the old champion becomes `previous`.

    Order matters for crash safety: `previous` is set first (champion still valid), then
    `champion` moves in one call; only then is the now-redundant `challenger` alias cleared.
    """
    client = _client(settings)
    name, target = settings.model_name, str(version)
    describe(settings, target)
    before = get_alias(settings, CHAMPION)
    if before is not None and before.version == target:
        return Promotion(before, before)
    if before is not None:
        client.set_registered_model_alias(name, PREVIOUS, before.version)
    faults.reached(settings, "promote.previous_set")
    client.set_registered_model_alias(name, CHAMPION, target)
    faults.reached(settings, "promote.champion_set")
    challenger = get_alias(settings, CHALLENGER)
    if challenger is not None and challenger.version == target:
        _delete_alias(client, name, CHALLENGER)
    client.set_model_version_tag(name, target, "promoted_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if forced:
        client.set_model_version_tag(name, target, "promotion_forced", "true")
    log.info("%s: champion %s -> %s", name, before.version if before else "-", target)
    return Promotion(before, describe(settings, target))


def undo_promotion(settings: Settings, promotion: Promotion, previous: VersionInfo | None) -> None:
    """Put `champion` and `previous` back where they were before `promotion`.

    Used when the server refused the new version; the refused one is kept as `challenger` so it can
    be inspected.
    """
    if promotion.before is None or not promotion.changed:
        return
    client = _client(settings)
    name = settings.model_name
    client.set_registered_model_alias(name, CHAMPION, promotion.before.version)
    faults.reached(settings, "redeploy.undo")
    if previous is None:
        _delete_alias(client, name, PREVIOUS)
    else:
        client.set_registered_model_alias(name, PREVIOUS, previous.version)
    client.set_registered_model_alias(name, CHALLENGER, promotion.after.version)
    client.set_model_version_tag(name, promotion.after.version, "promotion_undone_at",
                                 datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    log.warning("%s: promotion of %s undone, champion is %s again", name, promotion.after.version,
                promotion.before.version)  # fmt: skip


def rollback(settings: Settings) -> Promotion:
    """Move `champion` back to `previous`; the version rolled back from becomes `previous`.

    `champion` moves first, so a crash between the two calls still leaves the rollback done;
    running rollback again then swaps back.
    """
    client = _client(settings)
    name = settings.model_name
    current = require_champion(settings)
    prev = get_alias(settings, PREVIOUS)
    if prev is None or prev.version == current.version:
        raise RegistryError(f"model {name} has no previous version to roll back to (champion is v{current.version})")
    client.set_registered_model_alias(name, CHAMPION, prev.version)
    client.set_registered_model_alias(name, PREVIOUS, current.version)
    client.set_model_version_tag(
        name, current.version, "rolled_back_at", datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    log.info("%s: rolled champion back %s -> %s", name, current.version, prev.version)
    return Promotion(current, describe(settings, prev.version))


# --- the redeploy gate -----------------------------------------------------------------------------


MIN_HOLDOUT_ROWS = 100


def _version_data(spark: SparkSession, settings: Settings, info: VersionInfo) -> tuple[DataSlice, int]:
    """The data slice and seed a version's run was split with: its snapshot, data mode and seed."""
    from lib.training.data import load_training_data

    run = _client(settings).get_run(info.run_id)
    snapshot = run.data.tags.get("iceberg_snapshot_id")
    if not snapshot:
        raise RegistryError(f"version {info.version} (run {info.run_id}) has no iceberg_snapshot_id tag")
    mode = "incremental" if run.data.tags.get("data_mode") == "incremental" else "full"
    data = load_training_data(spark, settings, mode=mode, snapshot_id=int(snapshot))
    return data, int(run.data.params.get("seed", DEFAULT_SEED))


def _training_rows(spark: SparkSession, settings: Settings, info: VersionInfo) -> pd.DataFrame:
    """The exact rows a version was fitted on, rebuilt from its run's snapshot, data mode and seed."""
    from lib.training.data import split

    data, seed = _version_data(spark, settings, info)
    return split(data.df, seed=seed)[0]


def _unseen(frame: pd.DataFrame, seen: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The rows of `frame` that appear in none of `seen` (an identical row counts as seen)."""
    if not seen:
        return frame
    columns = list(frame.columns)
    trained = pd.concat([other[columns] for other in seen]).drop_duplicates()
    marked = frame.merge(trained, on=columns, how="left", indicator=True)
    return marked.loc[marked["_merge"] == "left_only", columns].reset_index(drop=True)


def holdout_rows(spark: SparkSession, settings: Settings, versions: Sequence[VersionInfo] = ()) -> HoldOut:
    """The test split of the table's current snapshot, minus every row any of `versions` was fitted on.

    After a batch the split moves, so without this the champion would be scored on rows it trained
    on (and a bootstrapped batch repeats rows); the gate must compare unseen rows.
    """
    from lib.training.data import load_training_data, split

    data = load_training_data(spark, settings, mode="full")
    _, test = split(data.df, seed=DEFAULT_SEED)
    if versions:
        test = _unseen(test, [_training_rows(spark, settings, info) for info in versions])
        labels = set(labels_to_int(test[TARGET]))
        if len(test) < MIN_HOLDOUT_ROWS or labels != {0, 1}:
            names = ", ".join(f"v{info.version}" for info in versions)
            raise RegistryError(
                f"only {len(test)} held-out rows of snapshot {data.snapshot_id} are unseen by {names} "
                f"(need {MIN_HOLDOUT_ROWS} with both classes): append a batch (05_newbatch.py) and retrain"
            )
    return HoldOut(frame=test, snapshot_id=data.snapshot_id, table=data.table)


def version_holdout(spark: SparkSession, settings: Settings, info: VersionInfo) -> HoldOut:
    """Rebuild the test split `info` was scored on in MLflow, minus any row it was also fitted on.

    The split comes from its run's snapshot, data mode and seed; a bootstrapped batch can put a row
    on both sides. These are the rows to send the served model (08 --source table): whatever seed
    or snapshot it was trained with, it never saw them.
    """
    from lib.training.data import split

    data, seed = _version_data(spark, settings, info)
    train, test = split(data.df, seed=seed)
    return HoldOut(frame=_unseen(test, [train]), snapshot_id=data.snapshot_id, table=data.table)


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
        "gate.passed": str(result.passed).lower(),
    }.items():
        client.set_model_version_tag(settings.model_name, challenger.version, key_, value)
    log.info(result.describe())
    return result
