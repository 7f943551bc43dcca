"""The Monitoring page: traffic, latency, labelled quality, drift and alerts, refreshing by itself.

The HTML is a shell; `/api/monitoring/overview` answers with `lib.monitoring.live.overview` (SQL
aggregates plus the champion's judged window, as `python -m lib.monitoring check` judges it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from lib.app import AppError
from lib.app.server import page
from lib.monitoring import MonitoringError
from lib.monitoring.live import WINDOWS_HOURS, overview
from lib.monitoring.report import ProfileLoader, cached_profiles, champion_version

log = logging.getLogger(__name__)
REFRESH_SECONDS = 15
DEFAULT_HOURS = 24.0


def _profiles(app: FastAPI) -> ProfileLoader:
    """One profile cache per app: a registered version's training profile never changes."""
    if not hasattr(app.state, "monitoring_profiles"):
        app.state.monitoring_profiles = cached_profiles()
    return app.state.monitoring_profiles


def _warm_up(app: FastAPI) -> None:
    """What the first Monitoring view would pay for: MLflow's import and store, the champion's profile."""
    import sklearn.metrics  # noqa: F401  (the quality numbers' first use imports it)

    settings = app.state.settings
    try:
        _profiles(app)(settings, champion_version(settings))
    except MonitoringError as exc:  # nothing to prepare yet; the page will say the same
        log.info("monitoring warm-up: %s", exc)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm up in the background as the app starts, so the first page view does not wait for MLflow."""
    app.state.monitoring_warm_up = threading.Thread(
        target=_warm_up, args=(app,), name="monitoring-warm-up", daemon=True
    )
    app.state.monitoring_warm_up.start()
    yield


router = APIRouter(lifespan=_lifespan)


@router.get("/monitoring", include_in_schema=False)
def monitoring_page(request: Request) -> Response:
    """The page shell; its data comes from /api/monitoring/overview so it can refresh without a reload."""
    return page(
        request, "monitoring", windows=WINDOWS_HOURS, default_hours=DEFAULT_HOURS, refresh_seconds=REFRESH_SECONDS
    )


@router.get("/api/monitoring/overview")
def monitoring_overview(
    request: Request, hours: Annotated[float, Query(gt=0, le=24 * 366)] = DEFAULT_HOURS
) -> dict[str, Any]:
    """Series per time bucket and version, redeploys, the champion's alerts and drift for the last `hours`."""
    app = request.app
    warm_up = getattr(app.state, "monitoring_warm_up", None)
    if warm_up is not None:
        warm_up.join()  # the registry is opened once, not by two threads at a time
    try:
        return overview(app.state.settings, hours, _profiles(app))
    except MonitoringError as exc:
        raise AppError(str(exc)) from exc
