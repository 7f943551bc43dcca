"""The Monitoring page: traffic, latency, labelled quality, drift and alerts, refreshing by itself.

The HTML is a shell; `/api/monitoring/overview` answers with `lib.monitoring.live.overview` (SQL
aggregates plus the champion's judged window, as `python -m lib.monitoring check` judges it).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from lib.app import AppError
from lib.app.server import page
from lib.app.stores import mlflow_ready
from lib.monitoring import MonitoringError
from lib.monitoring.live import WINDOWS_HOURS, overview
from lib.monitoring.report import ProfileLoader, cached_profiles

REFRESH_SECONDS = 15
DEFAULT_HOURS = 24.0


def _profiles(app: FastAPI) -> ProfileLoader:
    """One profile cache per app: a registered version's training profile never changes."""
    if not hasattr(app.state, "monitoring_profiles"):
        app.state.monitoring_profiles = cached_profiles()
    return app.state.monitoring_profiles


def _warm_up() -> None:
    """Import what the first Monitoring view would wait for (MLflow's client, sklearn's metrics).

    Imports only: opening MLflow's stores stays with the first request, since their first opening
    must not run in two threads at once.
    """
    import sklearn.metrics  # noqa: F401  (the quality numbers' first use imports it)

    import lib.registry  # noqa: F401  (imports mlflow)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm up in the background as the app starts, so the first page view does not wait for imports."""
    threading.Thread(target=_warm_up, name="monitoring-warm-up", daemon=True).start()
    yield


router = APIRouter(lifespan=_lifespan)


@router.get("/monitoring", include_in_schema=False)
def monitoring_page(request: Request) -> Response:
    """The page shell; its data comes from /api/monitoring/overview so it can refresh without a reload."""
    return page(
        request, "monitoring", windows=WINDOWS_HOURS, default_hours=DEFAULT_HOURS, refresh_seconds=REFRESH_SECONDS
    )


@router.get("/api/monitoring/overview", dependencies=[Depends(mlflow_ready)])  # champion lookup, profiles
def monitoring_overview(
    request: Request, hours: Annotated[float, Query(gt=0, le=24 * 366)] = DEFAULT_HOURS
) -> dict[str, Any]:
    """Series per time bucket and version, redeploys, the champion's alerts and drift for the last `hours`."""
    app = request.app
    try:
        return overview(app.state.settings, hours, _profiles(app))
    except MonitoringError as exc:
        raise AppError(str(exc)) from exc
