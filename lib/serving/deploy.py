"""Deployment workflows shared by 04_api_deployment.py and 07_api_redeployment.py.

Deploy: register the best run, make it champion, start the server (or hot-reload a running one).
Redeploy: register the best retrained run as challenger, gate it against the champion on the same
held-out rows, promote, hot-swap and verify /version. Rollback: champion back to previous, swap.
Deployments hold a file lock so two scripts never move aliases at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from filelock import FileLock, Timeout

from lib import faults, registry
from lib.config import Settings
from lib.registry import GateRejected, GateResult, HoldOut, Promotion, RegistryError, VersionInfo
from lib.serving import service
from lib.serving.client import Endpoint, EndpointError, ServingClient, endpoint, read_state
from lib.serving.loader import ServingError

DeployError = (RegistryError, ServingError, EndpointError)


@dataclass(frozen=True)
class DeployResult:
    """What a deployment did: the alias move and what happened to the server."""

    promotion: Promotion
    endpoint: Endpoint
    action: str  # what happened to the server: "started", "reloaded" or "unchanged"
    gate: GateResult | None = None

    @property
    def champion(self) -> VersionInfo:
        """The version the champion alias points at after the deployment."""
        return self.promotion.after


@contextmanager
def deploy_lock(settings: Settings, timeout: float = 600.0) -> Iterator[None]:
    """Hold the run dir's deploy lock so two deployments never move the alias or the server at once."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(settings.run_dir / "deploy.lock")
    try:
        with lock.acquire(timeout=timeout):
            yield
    except Timeout as exc:
        raise ServingError(f"another deployment holds {lock.lock_file} since more than {timeout:.0f}s") from exc


def serve_version(
    settings: Settings, version: str, *, no_auth: bool = False, timeout: float = 120.0
) -> tuple[Endpoint, str]:
    """Make the server serve `version`: start it if none runs, else hot-reload if it serves another."""
    if read_state(settings) is None:
        return service.start_detached(settings, no_auth=no_auth, expect_version=version, timeout=timeout), "started"
    ep = endpoint(settings)
    with ServingClient(ep, timeout=timeout) as client:
        if client.version()["model_version"] == version:
            return ep, "unchanged"
        answer = client.reload()
        if answer["model_version"] != version:
            raise ServingError(
                f"server reloaded version {answer['model_version']}, expected {version}: the champion alias "
                "moved meanwhile; rerun the script"
            )
        client.wait_ready(version, timeout=timeout)
        served = client.version()["model_version"]
        if served != version:
            raise ServingError(f"/version reports {served} after the reload, expected {version}")
    return ep, "reloaded"


def refresh_threshold(settings: Settings, version: str, timeout: float = 30.0) -> float | None:
    """Have a running server re-read `version`'s tags (10 sets `decision_threshold` after it went live).

    Returns the threshold it decides at now, or None when no server runs or it serves another version.
    """
    if read_state(settings) is None:
        return None
    with ServingClient(endpoint(settings), timeout=timeout) as client:
        if client.version()["model_version"] != version:
            return None
        return float(client.reload()["decision_threshold"])


def promote_best(settings: Settings, metric: str = registry.DEFAULT_METRIC) -> Promotion:
    """Register the best run of the training experiment and make it champion (no server change)."""
    version = registry.register_best(settings, settings.experiment_name, metric, "run 03_train.py first")
    return registry.promote(settings, version.version)


def deploy(settings: Settings, *, metric: str = registry.DEFAULT_METRIC, no_auth: bool = False) -> DeployResult:
    """04: best training run -> champion -> served (started, or hot-reloaded if already running)."""
    with deploy_lock(settings):
        promotion = promote_best(settings, metric)
        ep, action = serve_version(settings, promotion.after.version, no_auth=no_auth)
    return DeployResult(promotion, ep, action)


def redeploy(
    settings: Settings,
    holdout: Callable[[Sequence[VersionInfo]], HoldOut],
    *,
    metric: str = registry.DEFAULT_METRIC,
    tolerance: float | None = None,
    force: bool = False,
) -> DeployResult:
    """07: best retrained run -> challenger -> gate vs champion -> promote -> hot swap -> verify.

    A rejected challenger raises GateRejected with the champion and the server untouched.
    `holdout(versions)` is called only once there is something to compare (with the two versions, whose
    training rows it leaves out), so a missing prerequisite fails
    before any Spark session starts.
    """
    tolerance = settings.gate_tolerance if tolerance is None else tolerance
    with deploy_lock(settings):
        run_id = registry.best_run_id(settings, settings.retrain_experiment_name, metric, "run 06_retrain.py first")
        champion = registry.require_champion(settings)
        endpoint(settings)
        challenger, _ = registry.register_run(settings, run_id, metric)
        if challenger.version == champion.version:
            ep, action = serve_version(settings, champion.version)
            return DeployResult(Promotion(champion, champion), ep, action)
        registry.set_alias(settings, registry.CHALLENGER, challenger.version)
        faults.reached(settings, "redeploy.challenger_set")
        gate = registry.evaluate_gate(
            settings, challenger, champion, holdout((challenger, champion)), metric, tolerance
        )
        if not gate.passed and not force:
            raise GateRejected(gate)
        previous = registry.get_alias(settings, registry.PREVIOUS)
        promotion = registry.promote(settings, challenger.version, forced=not gate.passed)
        try:
            ep, action = serve_version(settings, challenger.version)
        except (ServingError, EndpointError) as exc:
            registry.undo_promotion(settings, promotion, previous)
            raise ServingError(
                f"{exc}; promotion undone: v{champion.version} is champion again, v{challenger.version} "
                "stays @challenger"
            ) from exc
        faults.reached(settings, "redeploy.server_reloaded")
    return DeployResult(promotion, ep, action, gate)


def rollback(settings: Settings) -> DeployResult:
    """07 --rollback: champion back to previous, then hot swap and verify."""
    with deploy_lock(settings):
        endpoint(settings)
        promotion = registry.rollback(settings)
        ep, action = serve_version(settings, promotion.after.version)
    return DeployResult(promotion, ep, action)


def format_versions(rows: Iterable[tuple[str, VersionInfo | None]]) -> list[str]:
    """A before/after table: version, run, Iceberg snapshot and selection metric."""
    lines = [f"{'':8} {'version':>7}  {'run id':32}  {'iceberg snapshot':>20}  metric"]
    for label, info in rows:
        if info is None:
            lines.append(f"{label:8} {'-':>7}")
            continue
        value = "-" if math.isnan(info.metric_value) else f"{info.metric_name}={info.metric_value:.4f}"
        lines.append(f"{label:8} {'v' + info.version:>7}  {info.run_id:32}  {info.snapshot_id or '-':>20}  {value}")
    return lines
