"""The Monitoring page: traffic, latency, labelled quality, drift and alerts, refreshing by itself.

The HTML is a shell; `/api/monitoring/overview` answers with `lib.monitoring.live.overview` (SQL
aggregates plus the champion's judged window, as `python -m lib.monitoring check` judges it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from lib.app import AppError
from lib.app.server import page
from lib.monitoring import MonitoringError
from lib.monitoring.live import WINDOWS_HOURS, overview
from lib.monitoring.report import cached_profiles

router = APIRouter()
REFRESH_SECONDS = 15
DEFAULT_HOURS = 24.0


def _profiles(request: Request) -> Any:
    """One profile cache per app: a registered version's training profile never changes."""
    state = request.app.state
    if not hasattr(state, "monitoring_profiles"):
        state.monitoring_profiles = cached_profiles()
    return state.monitoring_profiles


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
    settings = request.app.state.settings
    try:
        return overview(settings, hours, _profiles(request))
    except MonitoringError as exc:
        raise AppError(str(exc)) from exc
