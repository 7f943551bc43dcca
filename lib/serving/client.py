"""Finding and calling the running model server, for scripts, the simulator and the demo.

The server records where it listens in `<run_dir>/server.json` (written once the port is bound,
so `SERVE_PORT=0` works); `endpoint(settings)` reads it, checks the process is alive and returns
the URL with the access key, or fails with "run 04_api_deployment.py first".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from lib.config import Settings
from lib.fileio import atomic_write_json, atomic_write_text

STATE_FILE = "server.json"
PID_FILE = "server.pid"
LOG_FILE = "server.log"


class EndpointError(RuntimeError):
    """No usable server; the message says what to run."""


@dataclass(frozen=True)
class ServerState:
    """What a running server wrote about itself."""

    pid: int
    host: str
    port: int
    auth: bool
    started_at: str
    log_file: str
    process_start: int | None = None

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server (a wildcard bind is reached on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Endpoint:
    """Where to send requests and the key to send with them (None when auth is off)."""

    url: str
    key: str | None
    pid: int
    state: ServerState

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header to send, empty when auth is off."""
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def state_path(settings: Settings) -> Path:
    """The JSON file a running server describes itself in."""
    return settings.run_dir / STATE_FILE


def pid_path(settings: Settings) -> Path:
    """The server's plain pid file, written alongside the state file."""
    return settings.run_dir / PID_FILE


def log_path(settings: Settings) -> Path:
    """The detached server's log file."""
    return settings.run_dir / LOG_FILE


def process_start(pid: int) -> int | None:
    """When the process started (clock ticks since boot, Linux /proc), None where unknown."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """True while the process exists (a zombie child of ours is reaped and counts as gone).

    With `started` (from `process_start`), a recycled pid belonging to another process is not
    mistaken for the server.
    """
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return started is None
    return started is None or process_start(pid) in (started, None)


def read_state(settings: Settings) -> ServerState | None:
    """The state file of a live server, or None (missing, unreadable, or its process is gone)."""
    path = state_path(settings)
    try:
        data = json.loads(path.read_text())
        state = ServerState(**data)
    except (OSError, ValueError, TypeError):
        return None
    return state if pid_alive(state.pid, state.process_start) else None


def save_state(settings: Settings, state: ServerState) -> None:
    """Record the started server (state and pid files, each written atomically)."""
    atomic_write_json(state_path(settings), asdict(state))
    atomic_write_text(pid_path(settings), f"{state.pid}\n")


def clear_state(settings: Settings, pid: int) -> None:
    """Remove the state files if they still describe process `pid`."""
    try:
        data = json.loads(state_path(settings).read_text())
    except (OSError, ValueError):
        data = {}
    if data.get("pid") == pid:
        state_path(settings).unlink(missing_ok=True)
        pid_path(settings).unlink(missing_ok=True)


def read_access_key(settings: Settings) -> str:
    """The server's access key from its file, or an EndpointError naming 04_api_deployment.py."""
    path = settings.access_key_file
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise EndpointError(f"cannot read the access key {path}: run 04_api_deployment.py first") from exc
    if not key:
        raise EndpointError(f"the access key file {path} is empty: run 04_api_deployment.py")
    return key


def endpoint(settings: Settings) -> Endpoint:
    """URL and key of the running server; EndpointError naming 04_api_deployment.py if none runs."""
    state = read_state(settings)
    if state is None:
        raise EndpointError(
            f"no model server is running (no live {state_path(settings)}): run 04_api_deployment.py first"
        )
    key = read_access_key(settings) if state.auth else None
    return Endpoint(url=state.url, key=key, pid=state.pid, state=state)


def error_detail(response: httpx.Response, limit: int | None = None) -> str:
    """Render an error answer as "HTTP <status>: <detail>": the server's `detail` field, else the raw text.

    The one extractor for every client of the server (scripts, simulator, demo); `limit` cuts a
    long detail for one-line logs.
    """
    try:
        body = response.json()
        detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    except ValueError:
        detail = response.text
    text = str(detail)
    if limit is not None:
        text = text[:limit]
    return f"HTTP {response.status_code}: {text}"


class ServingClient:
    """A small synchronous client over httpx for the server's routes."""

    def __init__(self, ep: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = ep
        self.http = httpx.Client(base_url=ep.url, headers=ep.headers, timeout=timeout)

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            request = response.request
            raise EndpointError(f"{request.method} {request.url.path}: {error_detail(response)}")
        return response.json()

    def predict(
        self, records: Mapping[str, Any] | Sequence[Mapping[str, Any]], event_time: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Score one record or a list of them via POST /predict; returns one prediction per record."""
        body: dict[str, Any] = {"request": records if isinstance(records, Mapping) else list(records)}
        if event_time is not None:
            body["event_time"] = event_time.isoformat()
        return self._json(self.http.post("/predict", json=body))["predictions"]

    def feedback(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Report true outcomes of earlier predictions (by uuid) via POST /feedback."""
        return self._json(self.http.post("/feedback", json={"feedback": list(items)}))

    def explain(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """SHAP contributions for one record via POST /explain."""
        return self._json(self.http.post("/explain", json={"request": dict(record)}))

    def version(self) -> dict[str, Any]:
        """The served model's registry facts and decision threshold (GET /version)."""
        return self._json(self.http.get("/version"))

    def health(self) -> dict[str, Any]:
        """Liveness answer of the server (GET /health)."""
        return self._json(self.http.get("/health"))

    def reload(self) -> dict[str, Any]:
        """Make the server load the version the champion alias names now (POST /admin/reload)."""
        return self._json(self.http.post("/admin/reload"))

    def wait_ready(self, version: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Poll /ready until the server serves (`version`, if given) or raise after `timeout`."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self.http.get("/ready")
                if response.status_code == 200:
                    ready = response.json()
                    if version is None or ready.get("model_version") == str(version):
                        return ready
                    last = f"serving version {ready.get('model_version')}, waiting for {version}"
                else:
                    last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(0.1)
        raise EndpointError(f"server at {self.endpoint.url} not ready after {timeout:.0f}s ({last})")
