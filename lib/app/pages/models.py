"""The Models page: registered versions, the served version, economics and CML's "Test" button.

Versions come with aliases, metrics, lineage and the gate's numbers; the economics are what 10
logged; the test form sends a sample request to the running model server with the access key.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from mlflow.exceptions import MlflowException

from lib.app import AppError
from lib.app.pages.explain import customer_cache, model_cache, require_version
from lib.app.server import page
from lib.app.versions import version_row
from lib.config import Settings
from lib.registry import CHALLENGER, CHAMPION, PREVIOUS, list_versions
from lib.scoring import load_economics
from lib.serving.client import EndpointError, ServingClient, endpoint
from lib.tracking import configure_mlflow

router = APIRouter()
ALIASES = (CHAMPION, PREVIOUS, CHALLENGER)
SERVER_TIMEOUT_S = 10.0


@router.get("/models", include_in_schema=False)
def models_page(request: Request) -> Response:
    """The page shell; its data comes from /api/models/… so it can refresh without a reload."""
    return page(request, "models", aliases=ALIASES)


def _run_tags(settings: Settings, run_id: str) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(configure_mlflow(settings).get_run(run_id).data.tags)
    except MlflowException:
        return {}  # the run was deleted: the version's own tags still say what it is


@router.get("/api/models/versions")
def versions(request: Request) -> dict[str, Any]:
    """Every registered version, newest first, with what the registry and its run know about it."""
    settings: Settings = request.app.state.settings
    infos = list_versions(settings)
    rows = [version_row(info, _run_tags(settings, info.run_id)) for info in infos]
    aliases = {alias: row["version"] for row in rows for alias in row["aliases"]}
    hint = "" if rows else "no registered version yet: run 03_train.py, then 04_api_deployment.py"
    return {"model_name": settings.model_name, "versions": rows, "aliases": aliases, "hint": hint}


@router.get("/api/models/server")
def server(request: Request) -> dict[str, Any]:
    """What the running model server reports (GET /version), or that none runs and how to start one."""
    settings: Settings = request.app.state.settings
    try:
        ep = endpoint(settings)
    except EndpointError as exc:
        return {"running": False, "message": str(exc)}
    try:
        with ServingClient(ep, timeout=SERVER_TIMEOUT_S) as client:
            reported = client.version()
    except (EndpointError, httpx.HTTPError) as exc:
        return {"running": True, "url": ep.url, "pid": ep.pid, "version": None,
                "message": f"the server at {ep.url} did not report its version: {exc}"}  # fmt: skip
    return {"running": True, "url": ep.url, "pid": ep.pid, "auth": ep.key is not None,
            "started_at": ep.state.started_at, "version": reported}  # fmt: skip


@router.get("/api/models/economics")
def economics(request: Request, version: str = Query(..., pattern=r"^[0-9]+$")) -> dict[str, Any]:
    """The gains, lift and profit curve 10_batch_scoring.py logged for `version`, if it ran for it."""
    settings: Settings = request.app.state.settings
    try:
        found = load_economics(settings, version)
    except (MlflowException, OSError) as exc:
        raise AppError(f"cannot read the economics of v{version}: {exc}") from exc
    if found is None:
        message = f"10_batch_scoring.py has not run for v{version}: no cut-off or gains chart yet"
        return {"version": version, "available": False, "message": message}
    info, report = found
    return {"version": info.version, "available": True, **report.to_dict()}


@router.get("/api/models/sample")
def sample(request: Request) -> dict[str, Any]:
    """A /predict body to start the test form from: the first customer of the champion's held-out split."""
    settings: Settings = request.app.state.settings
    champion = require_version(settings, model_cache(request))
    rows = customer_cache(request).get(settings, "holdout", champion.info).page(0, 1)
    if not rows:
        raise AppError(f"v{champion.info.version}'s held-out split is empty")
    return {"request": rows[0]["record"]}


@router.post("/api/models/test")
def test_model(request: Request, body: Annotated[Any, Body(description="the body to POST to /predict")]) -> Any:
    """Send `body` to the running server's /predict with the access key; the server's answer, as it came."""
    settings: Settings = request.app.state.settings
    try:
        ep = endpoint(settings)
    except EndpointError as exc:
        raise AppError(str(exc)) from exc
    url = f"{ep.url}/predict"
    start = time.perf_counter()
    try:
        with ServingClient(ep, timeout=SERVER_TIMEOUT_S) as client:
            answer = client.http.post("/predict", json=body)
    except httpx.HTTPError as exc:
        raise AppError(f"the model server at {ep.url} did not answer: {exc}") from exc
    elapsed_ms = (time.perf_counter() - start) * 1000
    try:
        payload: Any = answer.json()
    except ValueError:
        payload = answer.text
    return {"url": url, "status": answer.status_code, "elapsed_ms": elapsed_ms, "response": payload}
