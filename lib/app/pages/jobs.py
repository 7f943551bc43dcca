"""The Jobs page: the chain from jobs.yaml, the run history, a run's log, and starting a chain.

Reading needs nothing; starting a chain needs the access key (`Authorization: Bearer <key>` or
`"accessKey"` in the JSON body, as on the model server). The chain runs through `lib.jobs`
(`launch_chain`: `python -m lib.jobs run NAME` in the background), so the app stays responsive and
the progress the page polls is the job history every other runner writes too.
"""

from __future__ import annotations

import hmac
import json
import threading
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from lib.app import AppError
from lib.app.server import page
from lib.config import Settings
from lib.fileio import tail_lines
from lib.jobs import JobError, JobHistory, JobRun, load_spec

router = APIRouter()
POLL_SECONDS = 2
KEY_HELP = "send 'Authorization: Bearer <key>' or \"accessKey\" in the JSON body (the key is in {path})"


def run_json(run: JobRun) -> dict[str, Any]:
    """One history row for the page; a running job's duration is its elapsed time so far."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    seconds = run.seconds if run.seconds is not None else (now - run.started_at).total_seconds()
    return {
        "run_id": run.run_id, "chain_id": run.chain_id, "job": run.job, "trigger": run.trigger,
        "status": run.status, "exit_code": run.exit_code, "seconds": round(seconds, 1),
        "started_at": f"{run.started_at:%Y-%m-%d %H:%M:%S}",
        "ended_at": None if run.ended_at is None else f"{run.ended_at:%Y-%m-%d %H:%M:%S}",
    }  # fmt: skip


def _spec(settings: Settings) -> Any:
    try:
        return load_spec(settings.jobs_spec)
    except JobError as exc:
        raise AppError(str(exc)) from exc


def _key_error(request: Request, body: dict[str, Any]) -> JSONResponse | None:
    """401 without a key, 403 with a wrong one; None when the key matches."""
    settings: Settings = request.app.state.settings
    expected: str = request.app.state.access_key
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    if not given and isinstance(body.get("accessKey"), str):
        given = body["accessKey"]
    help_text = KEY_HELP.format(path=settings.access_key_file)
    if not given:
        return JSONResponse({"detail": f"starting a job needs the access key: {help_text}"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse({"detail": f"wrong access key: {help_text}"}, status_code=403)
    return None


@router.get("/jobs", include_in_schema=False)
def jobs_page(request: Request) -> Response:
    """The page shell; its data comes from /api/jobs/… so it can refresh without a reload."""
    settings: Settings = request.app.state.settings
    return page(request, "jobs", key_file=settings.access_key_file, poll_seconds=POLL_SECONDS)


@router.get("/api/jobs/spec")
def jobs_spec(request: Request) -> dict[str, Any]:
    """The jobs of jobs.yaml in run order, and the chains each root starts."""
    spec = _spec(request.app.state.settings)
    return {
        "path": str(spec.path),
        "jobs": [
            {
                "name": j.name,
                "command": j.display(),
                "depends_on": list(j.depends_on),
                "timeout": j.timeout,
                "schedule": j.schedule,
                "description": j.description,
            }
            for j in spec.topological()
        ],  # fmt: skip
        "chains": {j.name: [c.name for c in spec.chain(j.name)] for j in spec.topological()},
    }


@router.get("/api/jobs/runs")
def jobs_runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Recent runs, newest first; `after` keeps only runs with a larger id (a chain just started)."""
    settings: Settings = request.app.state.settings
    runs = JobHistory(settings.metrics_db_url).runs(limit=limit)
    if after is not None:
        runs = [r for r in runs if r.run_id > after]
    return {"runs": [run_json(r) for r in runs]}


@router.get("/api/jobs/runs/{run_id}/log")
def jobs_run_log(request: Request, run_id: int, tail: Annotated[int, Query(ge=1, le=5000)] = 200) -> Any:
    """The last `tail` lines of one run's log."""
    settings: Settings = request.app.state.settings
    try:
        run = JobHistory(settings.metrics_db_url).get(run_id)
    except JobError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    if not run.log_path.is_file():
        return {"run": run_json(run), "path": str(run.log_path), "lines": [], "missing": True}
    return {"run": run_json(run), "path": str(run.log_path), "lines": tail_lines(run.log_path, tail), "missing": False}


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object sent, or {} (a missing key must be a 401, not a body validation error)."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@router.post("/api/jobs/start", status_code=202)
async def jobs_start(request: Request) -> Any:
    """Start job `job` and its dependents in the background (needs the access key)."""
    body = await _json_body(request)
    refused = _key_error(request, body)
    if refused is not None:
        return refused
    name = body.get("job")
    if not isinstance(name, str) or not name:
        return JSONResponse({"detail": 'give the job to start as {"job": NAME}'}, status_code=422)
    from lib.jobs import launch_chain

    settings: Settings = request.app.state.settings
    try:
        launched = await run_in_threadpool(launch_chain, settings, name)
    except JobError as exc:
        raise AppError(str(exc)) from exc
    threading.Thread(target=launched.process.wait, name=f"reap-{launched.pid}", daemon=True).start()
    return {"job": name, "chain": list(launched.jobs), "pid": launched.pid, "after_run_id": launched.after_run_id,
            "log": str(launched.log_path)}  # fmt: skip
