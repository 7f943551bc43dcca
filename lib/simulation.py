"""Traffic simulation: real HTTP requests to the running endpoint, then delayed ground truth.

The simulator plays a stretch of production life against the deployed model. Every record goes
to POST /predict as its own request (with its access key and an `event_time` spread over a
simulated period), then the true outcome of every answered request comes back through
POST /feedback. To show a model degrading over time, a share of the reported labels is flipped
and that share rises across the run (the CML monitoring demo does the same), and/or the inputs
come from a drift scenario batch (`lib.batches.generate_batch`). Nothing is faked: a request the
server does not answer is counted as an error and reported.

The simulated period starts at the UTC midnight after the latest event already logged, so a
second run after a redeploy continues the time axis and each model version gets its own days.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
import pandas as pd
from tqdm import tqdm

from lib.config import DEFAULT_SEED, Settings
from lib.features import RAW_COLUMNS, TARGET, labels_to_int
from lib.serving.client import error_detail

log = logging.getLogger(__name__)

SOURCES = ("batch", "table")
FEEDBACK_BATCH = 200  # labels per POST /feedback
MAX_ERROR_KINDS = 5


class SimulationError(RuntimeError):
    """The simulation cannot run; the message says what to run or fix."""


@dataclass(frozen=True)
class SimulationConfig:
    """What one simulator run sends; defaults are the script's defaults."""

    requests: int = 1000
    concurrency: int = 4
    source: str = "batch"
    drift: str | None = None
    flip_start: float = 0.0
    flip_end: float = 0.3
    days: float = 7.0
    label_delay_hours: float = 24.0
    seed: int = DEFAULT_SEED
    timeout_s: float = 30.0

    def validate(self) -> None:
        """Reject impossible settings with a SimulationError before any request is sent."""
        if self.requests < 1:
            raise SimulationError(f"requests={self.requests} must be at least 1")
        if self.concurrency < 1:
            raise SimulationError(f"concurrency={self.concurrency} must be at least 1")
        if self.source not in SOURCES:
            raise SimulationError(f"source={self.source!r} must be one of {', '.join(SOURCES)}")
        for name in ("flip_start", "flip_end"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SimulationError(f"{name}={value} must be a share between 0 and 1")
        if self.days <= 0:
            raise SimulationError(f"days={self.days} must be positive")
        if self.label_delay_hours < 0:
            raise SimulationError(f"label_delay_hours={self.label_delay_hours} must not be negative")


# --- the simulated world -------------------------------------------------------------------------


def flip_schedule(n: int, start: float, end: float) -> np.ndarray:
    """Per-request probability that its label is reported flipped, rising linearly over the run."""
    return np.linspace(start, end, n) if n > 1 else np.full(n, start, dtype=float)


def flip_labels(labels: Sequence[int], schedule: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Flip each 0/1 label with its scheduled probability: the world drifting from what the model learnt."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(schedule, dtype=float)
    if y.shape != p.shape:
        raise SimulationError(f"{len(y)} labels but {len(p)} flip probabilities")
    return np.where(rng.random(len(y)) < p, 1 - y, y)


def simulation_start(latest_event: datetime | None, now: datetime, days: float) -> datetime:
    """Where the simulated period begins.

    After the newest logged event: the next UTC midnight, so runs never share a day. On an empty
    log: `days` before today's UTC midnight, so the first run replays the week that just ended.
    """
    if latest_event is None:
        midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=math.ceil(days))
    latest = pd.Timestamp(latest_event)
    latest = latest.tz_localize(timezone.utc) if latest.tzinfo is None else latest.tz_convert(timezone.utc)
    return (latest.floor("D") + pd.Timedelta(days=1)).to_pydatetime()


def event_times(n: int, start: datetime, days: float) -> list[datetime]:
    """`n` event times spread evenly over `days` from `start`, in order (request i at i/n of the way)."""
    step = timedelta(days=days) / n
    return [start + step * i for i in range(n)]


def pick_records(source: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` rows of the source in random order; sampled with replacement only if the source is smaller."""
    if source.empty:
        raise SimulationError("the source of simulated records is empty")
    missing = [c for c in RAW_COLUMNS if c not in source.columns]
    if missing:
        raise SimulationError(f"source records lack column(s): {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(source), size=n, replace=len(source) < n)
    return source.iloc[idx].reset_index(drop=True)


def request_bodies(records: pd.DataFrame, times: Sequence[datetime]) -> list[dict[str, Any]]:
    """One /predict body per record: raw inputs (no target) as JSON types, plus its event time."""
    rows = records.loc[:, [c for c in RAW_COLUMNS if c != TARGET]].astype(object).to_dict("records")
    return [{"request": row, "event_time": ts.isoformat()} for row, ts in zip(rows, times, strict=True)]


# --- sources -------------------------------------------------------------------------------------


def champion_holdout(settings: Settings) -> tuple[pd.DataFrame, str]:
    """The champion's own held-out test rows (its run's snapshot, data mode and seed).

    This way a model trained with any `--seed` is never sent a row it was fitted on.
    """
    from lib.registry import require_champion, version_holdout

    champion = require_champion(settings)
    rows = version_holdout(None, settings, champion)  # pyiceberg for a small table, else Spark
    where = f"snapshot {rows.snapshot_id} of {rows.table}"
    return rows.frame, f"held-out test split of champion v{champion.version} ({where})"


def load_source(settings: Settings, config: SimulationConfig) -> tuple[pd.DataFrame, str]:
    """The records to send and a description of where they came from."""
    from lib.batches import BatchError, check_batch_in_table, generate_batch, latest_batch_path, read_batch_csv
    from lib.lake import LakeError, read_pandas
    from lib.registry import RegistryError
    from lib.training.errors import TrainingError

    try:
        if config.drift is not None:
            table = read_pandas(settings)
            batch = generate_batch(table, rows=config.requests, seed=config.seed, drift=config.drift)
            return batch, f"drift scenario {config.drift!r} generated from {settings.table_ident}"
        if config.source == "batch":
            path = latest_batch_path(settings)
            check_batch_in_table(settings)
            return read_batch_csv(path), f"latest batch {path}"
        return champion_holdout(settings)
    except (BatchError, LakeError, RegistryError, TrainingError) as exc:
        raise SimulationError(str(exc)) from exc


def latest_logged_event(settings: Settings) -> datetime | None:
    """The newest event time of this project's model in the log, or None when nothing is logged yet."""
    from lib.metrics_store import MetricsStore

    return MetricsStore(settings.metrics_db_url).log_span(model_name=settings.model_name).last_event


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One /predict request as the client saw it."""

    index: int
    latency_ms: float
    uuid: str | None = None
    prediction: int | None = None
    probability: float | None = None
    model_version: str | None = None
    error: str | None = None


def _parse_prediction(payload: Any) -> Mapping[str, Any]:
    """The one answer to a single-record request (the server may wrap it in a list)."""
    if isinstance(payload, Mapping) and "predictions" in payload:
        payload = payload["predictions"]
    if isinstance(payload, list):
        if len(payload) != 1:
            raise ValueError(f"expected one prediction, got {len(payload)}")
        payload = payload[0]
    return payload


def send_prediction(client: httpx.Client, index: int, body: Mapping[str, Any]) -> Reply:
    """POST one record; any failure (connection, status, malformed answer) becomes an error reply."""
    start = time.perf_counter()
    try:
        response = client.post("/predict", json=body)
    except httpx.HTTPError as exc:
        return Reply(index, (time.perf_counter() - start) * 1000, error=f"{type(exc).__name__}: {exc}")
    latency = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        return Reply(index, latency, error=error_detail(response, limit=200))
    try:
        answer = _parse_prediction(response.json())
        return Reply(
            index,
            latency,
            uuid=str(answer["uuid"]),
            prediction=int(answer["prediction"]),
            probability=float(answer["probability"]),
            model_version=str(answer["model_version"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        return Reply(index, latency, error=f"malformed answer: {exc}")


def send_predictions(
    client: httpx.Client, bodies: Sequence[Mapping[str, Any]], concurrency: int, progress: bool = True
) -> list[Reply]:
    """Send every body as its own request from a thread pool; replies come back in input order."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        replies = pool.map(lambda ib: send_prediction(client, *ib), enumerate(bodies))
        return list(tqdm(replies, total=len(bodies), desc="predict", unit="req", disable=not progress))


def send_feedback(
    client: httpx.Client,
    items: Sequence[Mapping[str, Any]],
    batch_size: int = FEEDBACK_BATCH,
    progress: bool = True,
) -> tuple[int, list[str]]:
    """Report ground truth in batches; returns (labels stored, error messages).

    A batch the server rejects is one error; uuids it does not know (prediction not logged) are
    reported too, since their labels were not stored.
    """
    accepted, errors = 0, []
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for batch in tqdm(batches, desc="feedback", unit="batch", disable=not progress):
        try:
            response = client.post("/feedback", json={"feedback": list(batch)})
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if response.status_code != 200:
            errors.append(error_detail(response, limit=200))
            continue
        try:
            answer = response.json()
            accepted += int(answer["matched"])
            unknown = list(answer.get("unknown") or [])
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(f"malformed feedback answer: {exc}")
            continue
        if unknown:
            errors.append(f"{len(unknown)} uuid(s) unknown to the server, e.g. {unknown[0]}")
    return accepted, errors


# --- the run -------------------------------------------------------------------------------------


@dataclass
class SimulationResult:
    """What happened, for the script's summary."""

    source: str
    url: str
    period_start: datetime
    period_end: datetime
    replies: list[Reply]
    labels: np.ndarray
    flip_rates: np.ndarray
    times: list[datetime]
    feedback_accepted: int = 0
    feedback_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[Reply]:
        """The requests the server answered with a prediction."""
        return [r for r in self.replies if r.error is None]

    @property
    def errors(self) -> int:
        """How many requests failed (transport error or error answer)."""
        return len(self.replies) - len(self.ok)

    def error_kinds(self) -> list[tuple[str, int]]:
        """The most frequent error messages with their counts, for a short summary."""
        return Counter(r.error for r in self.replies if r.error).most_common(MAX_ERROR_KINDS)

    def latency_percentiles(self) -> dict[str, float]:
        """Client-side round-trip latency of answered requests (includes HTTP and queueing)."""
        values = [r.latency_ms for r in self.ok]
        if not values:
            return {"p50": math.nan, "p95": math.nan, "p99": math.nan}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}

    def versions(self) -> Counter:
        """Answered requests per model version, to show a hot swap mid-run."""
        return Counter(r.model_version for r in self.ok)

    def as_log(self) -> pd.DataFrame:
        """The answered requests with the labels reported, shaped like the metrics store's log."""
        ok = self.ok
        return pd.DataFrame(
            {
                "event_ts": pd.to_datetime([self.times[r.index] for r in ok], utc=True),
                "model_version": [r.model_version for r in ok],
                "prediction": [r.prediction for r in ok],
                "probability": [r.probability for r in ok],
                "label": pd.array([int(self.labels[r.index]) for r in ok], dtype="Int64"),
                "latency_ms": [r.latency_ms for r in ok],
            }
        )

    def daily_accuracy(self) -> pd.DataFrame:
        """Accuracy of the reported labels per simulated day and model version."""
        from lib.monitoring.performance import performance_by_window

        perf = performance_by_window(self.as_log(), freq="1D")
        flips = pd.DataFrame(
            {"window_start": pd.to_datetime(self.times, utc=True).floor("1D"), "flip_rate": self.flip_rates}
        )
        mean_flip = flips.groupby("window_start", as_index=False)["flip_rate"].mean()
        out = perf.merge(mean_flip, on="window_start", how="left")
        return out.loc[:, ["window_start", "model_version", "requests", "accuracy", "f1", "flip_rate"]]


def run_simulation(
    settings: Settings,
    config: SimulationConfig,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    progress: bool = True,
) -> SimulationResult:
    """Send the requests to the running endpoint, then the (flipped) ground truth of every answered one."""
    from lib.serving.client import EndpointError, endpoint

    config.validate()
    try:
        ep = endpoint(settings)
    except EndpointError as exc:
        raise SimulationError(str(exc)) from exc
    source, description = load_source(settings, config)
    records = pick_records(source, config.requests, config.seed)
    start = simulation_start(latest_logged_event(settings), now(), config.days)
    times = event_times(config.requests, start, config.days)
    rng = np.random.default_rng(config.seed + 1)
    flip_rates = flip_schedule(config.requests, config.flip_start, config.flip_end)
    labels = flip_labels(labels_to_int(records[TARGET]), flip_rates, rng)
    log.info("sending %d requests to %s from %s", config.requests, ep.url, description)
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    with httpx.Client(base_url=ep.url, headers=ep.headers, timeout=config.timeout_s, limits=limits) as client:
        replies = send_predictions(client, request_bodies(records, times), config.concurrency, progress)
        result = SimulationResult(
            source=description,
            url=ep.url,
            period_start=start,
            period_end=start + timedelta(days=config.days),
            replies=replies,
            labels=labels,
            flip_rates=flip_rates,
            times=times,
        )
        delay = timedelta(hours=config.label_delay_hours)
        feedback = [
            {
                "uuid": r.uuid,
                "label": int(labels[r.index]),
                "event_time": (times[r.index] + delay).isoformat(),
            }
            for r in result.ok
        ]
        if feedback:
            batch = min(FEEDBACK_BATCH, settings.max_batch_records)
            result.feedback_accepted, result.feedback_errors = send_feedback(client, feedback, batch, progress)
    return result


def format_summary(result: SimulationResult) -> Iterable[str]:
    """Lines for the script's report."""
    lat = result.latency_percentiles()
    yield f"endpoint  : {result.url}"
    yield f"source    : {result.source}"
    start, end = result.period_start, result.period_end
    yield f"period    : {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC (event time)"
    yield f"requests  : {len(result.replies):,} sent, {len(result.ok):,} answered, {result.errors:,} errors"
    for message, count in result.error_kinds():
        yield f"  error x{count}: {message}"
    versions = ", ".join(f"v{v} ({n:,})" for v, n in sorted(result.versions().items()))
    yield f"versions  : {versions or '-'}"
    yield f"latency   : p50 {lat['p50']:.1f}, p95 {lat['p95']:.1f}, p99 {lat['p99']:.1f} ms (client-side)"
    failed = len(result.feedback_errors)
    yield f"feedback  : {result.feedback_accepted:,} labels accepted, {failed} failed batches"
    for message in result.feedback_errors[:MAX_ERROR_KINDS]:
        yield f"  feedback error: {message}"
    if result.ok:
        daily = result.daily_accuracy()
        yield "accuracy per simulated day (labels as reported, after flips):"
        yield f"  {'day':10}  {'version':>7}  {'requests':>8}  {'accuracy':>8}  {'f1':>6}  {'flip rate':>9}"
        for row in daily.itertuples():
            yield (
                f"  {row.window_start:%Y-%m-%d}  {'v' + row.model_version:>7}  {row.requests:>8,}  "
                f"{row.accuracy:>8.3f}  {row.f1:>6.3f}  {row.flip_rate:>9.2f}"
            )
