"""The Explain page: the churn workshop's what-if app, with exact SHAP (XGBoost TreeSHAP) instead of LIME.

Pick a customer (the champion's held-out split or the latest batch) or fill the form; the champion
and the previous version score it side by side, each with its decision at its own threshold and a
waterfall of its contributions. Editing a field re-scores and shows the change from the customer
as loaded (the baseline).
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from lib.app import AppError
from lib.app.customers import MAX_PAGE, SOURCES, CustomerCache
from lib.app.explaining import explain, field_of, form_fields
from lib.app.loaded import ModelCache, VersionModel
from lib.app.server import page
from lib.config import Settings
from lib.features import FeatureError
from lib.registry import CHAMPION, PREVIOUS
from lib.serving.schemas import check_record

router = APIRouter()
_STATE_LOCK = threading.Lock()


def _cache(request: Request, name: str, factory: type) -> Any:
    """One cache per app (on `app.state`), made on first use."""
    with _STATE_LOCK:
        cache = getattr(request.app.state, name, None)
        if cache is None:
            cache = factory()
            setattr(request.app.state, name, cache)
        return cache


def model_cache(request: Request) -> ModelCache:
    """The app's loaded versions (shared with the Models page)."""
    return _cache(request, "models", ModelCache)


def customer_cache(request: Request) -> CustomerCache:
    """The app's customer sources read so far."""
    return _cache(request, "customers", CustomerCache)


def require_version(settings: Settings, models: ModelCache, alias: str = CHAMPION) -> VersionModel:
    """The alias's loaded version, or an AppError saying to deploy first."""
    found = models.for_alias(settings, alias)
    if found is None:
        raise AppError(f"model {settings.model_name} has no '{alias}' version: run 04_api_deployment.py first")
    return found


@router.get("/explain", include_in_schema=False)
def explain_page(request: Request) -> Response:
    """The page shell with the customer form (fields from `lib.features`); data comes from /api/explain/…."""
    return page(request, "explain", fields=form_fields(), sources=SOURCES)


@router.get("/api/explain/customers")
def customers(
    request: Request,
    source: str = Query("holdout", description="holdout (the champion's held-out split) or batch (the latest batch)"),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
) -> Any:
    """A page of customers of one source, with their true outcome when known."""
    if source not in SOURCES:
        return JSONResponse({"detail": f"source must be one of {', '.join(SOURCES)}", "field": "source"}, 422)
    settings: Settings = request.app.state.settings
    champion = require_version(settings, model_cache(request))
    found = customer_cache(request).get(settings, source, champion.info)
    return {
        "source": found.source,
        "description": found.description,
        "total": len(found.frame),
        "offset": offset,
        "customers": found.page(offset, limit),
    }


class ScoreRequest(BaseModel):
    """One customer's fields, and optionally the customer as first loaded (for the delta)."""

    model_config = ConfigDict(extra="forbid")
    record: dict[str, Any]
    baseline: dict[str, Any] | None = None


class FieldProblem(Exception):
    """A record breaks the feature definition; answered 422 naming the field."""

    def __init__(self, message: str, part: str) -> None:
        super().__init__(message)
        self.field = field_of(message)
        self.part = part


def _score(version: VersionModel, record: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    features = version.model.features
    try:
        clean = check_record(record, features)
    except FeatureError as exc:
        raise FieldProblem(str(exc), "record") from exc
    answer: dict[str, Any] = {
        "alias": version.alias,
        "version": version.info.version,
        "threshold_source": version.threshold_source,
        **explain(version.model, clean, version.threshold).to_dict(),
        "baseline_probability": None,
        "delta": None,
    }
    if baseline is not None:
        try:
            base_clean = check_record(baseline, features)
        except FeatureError as exc:
            raise FieldProblem(str(exc), "baseline") from exc
        base_p = float(version.model.predict_records([base_clean], version.threshold)[0][0])
        answer["baseline_probability"] = base_p
        answer["delta"] = answer["probability"] - base_p
    return answer


@router.post("/api/explain/score")
def score(request: Request, body: ScoreRequest) -> Any:
    """Champion and previous on the same record: probability, decision, SHAP contributions, delta."""
    settings: Settings = request.app.state.settings
    models = model_cache(request)
    champion = require_version(settings, models)
    previous = models.for_alias(settings, PREVIOUS)
    try:
        answer = {
            "champion": _score(champion, body.record, body.baseline),
            "previous": _score(previous, body.record, body.baseline) if previous is not None else None,
        }
    except FieldProblem as exc:
        return JSONResponse({"detail": str(exc), "field": exc.field, "part": exc.part}, status_code=422)
    if previous is None:
        answer["previous_note"] = f"no '{PREVIOUS}' version yet: it appears after the first redeploy (07)"
    return answer
