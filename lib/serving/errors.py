"""Every error the server answers is a JSON body naming the problem; no input produces a 500.

`error()` builds the body, `install_handlers()` maps validation, feature, store and HTTP errors to
it, and `documented()` gives the OpenAPI `responses` entry for the codes a route can answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as FastAPIJSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from lib.features import FeatureError
from lib.metrics_store import MetricsStoreError
from lib.serving.responses import ErrorResponse

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    401: "missing or invalid access key",
    404: "unknown uuid",
    413: "body too large",
    422: "invalid request, naming the field",
    503: "no model loaded, or the prediction log is unavailable",
}


class JSONResponse(FastAPIJSONResponse):
    """ASCII-escaped JSON, so no client-supplied string (even a lone surrogate) can break encoding."""

    def render(self, content: Any) -> bytes:
        """Compact, ASCII-only JSON; NaN or infinity is refused rather than written as invalid JSON."""
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode("ascii")


def error(status: int, detail: str, errors: list[dict[str, str]] | None = None, **headers: str) -> JSONResponse:
    """The one error body: `detail` says what was wrong, `errors` lists every field problem."""
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers or None)


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that can answer `codes` (all with the error body)."""
    return {c: {"model": ErrorResponse, "description": DESCRIPTIONS[c]} for c in codes}


def field_path(loc: tuple[Any, ...]) -> str:
    """The field path as a client wrote it: ('body', 'request', 'records', 0, 'age') -> 'request[0].age'.

    Drops pydantic's union tags (record/records under `request`, one/batch for /feedback).
    """
    items = list(loc[1:] if loc and loc[0] == "body" else loc)
    if items and items[0] in ("one", "batch"):
        del items[0]
    if len(items) > 1 and items[0] == "request" and items[1] in ("record", "records"):
        del items[1]
    parts: list[str] = []
    for item in items:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}" if parts else str(item))
    return "".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Turn pydantic's errors into {field, message} pairs a client can act on."""
    out = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            pos = err["loc"][-1] if err.get("loc") else "?"
            out.append({"field": "body", "message": f"malformed JSON at position {pos}: {ctx}"})
            continue
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            out.append({"field": "body", "message": "a JSON object body is required"})
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": field_path(tuple(err.get("loc", ()))), "message": msg})
    return out


async def on_validation(_: Request, exc: Exception) -> JSONResponse:
    """422 with every field problem; `detail` names the first."""
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return error(422, f"{first['field']}: {first['message']}", errors)


async def on_feature(_: Request, exc: Exception) -> JSONResponse:
    """422 for input the feature checks reject, with their message."""
    return error(422, str(exc))


async def on_store(_: Request, exc: Exception) -> JSONResponse:
    """503 when the prediction-log database fails; the cause goes to the server log."""
    log.error("prediction log unavailable: %s", exc)
    return error(503, f"prediction log unavailable: {type(exc).__name__}; see the server log")


async def on_http(_: Request, exc: Exception) -> JSONResponse:
    """The error body for HTTP errors raised by routes and Starlette, keeping their headers."""
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, str(exc.detail), **(exc.headers or {}))


async def on_crash(request: Request, exc: Exception) -> JSONResponse:
    """500 without internals for an unexpected error; the traceback goes to the server log."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); see the server log")


def install_handlers(app: FastAPI) -> None:
    """Route every failure to a JSON error body with the right status."""
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(FeatureError, on_feature)
    app.add_exception_handler(MetricsStoreError, on_store)
    app.add_exception_handler(SQLAlchemyError, on_store)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
