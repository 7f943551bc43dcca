"""The FastAPI application: shared layout, static assets and one router per page."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from lib.app import AppError
from lib.config import Settings

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

PAGES = (("explain", "Explain"), ("monitoring", "Monitoring"), ("models", "Models"), ("jobs", "Jobs"))


@lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    """plotly.min.js from the installed `plotly` package: the charts need no network."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def page(request: Request, name: str, **context: object) -> Response:
    """Render `templates/<name>.html` inside the shared layout."""
    settings: Settings = request.app.state.settings
    return templates.TemplateResponse(
        request,
        f"{name}.html",
        {"pages": PAGES, "active": name, "settings": settings, **context},
    )


def create_app(settings: Settings, access_key: str) -> FastAPI:
    """The app for one project's settings; `access_key` guards the actions that change state."""
    from lib.app.pages import explain, jobs, models, monitoring

    app = FastAPI(title="Bank MLOps lab", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.access_key = access_key
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/monitoring")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": settings.model_name}

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=409)
        return page(request, "error", message=str(exc), status_code=409)

    for module in (explain, monitoring, models, jobs):
        app.include_router(module.router)
    return app
