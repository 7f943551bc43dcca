"""The server's prediction log writer: rows leave the request path at once and reach SQL in batches.

`PredictionWriter.submit` pickles one request's rows into a queue; a sender thread pipes what is queued to a
separate writer process (`python -m lib.serving.prediction_log`) every ~100 ms or N rows, which
inserts it into the metrics store (`lib.metrics_store`) and acknowledges; `flush` waits for that
(feedback needs its uuids in the database), `close` writes the rest on shutdown.

A request's rows travel as one `PredictionBatch` (the fields they share once, the per-row ones as
lists; the fast path's rows as value lists under their column names), so the per-row cost of the
hand-off is a list element, not an object to build and pickle; on SQLite the writer inserts plain
tuples with one driver-level executemany.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT
from lib.metrics_store import MetricsStore, MetricsStoreError
from lib.serving.log_rows import Item, db_rows, insert_rows, row_count

log = logging.getLogger(__name__)


GC_EVERY = 100  # writer messages between garbage collections (one message every `interval`, 0.1 s)


def serve_writer(url: str, rows_fd: int, acks_fd: int, max_pending: int) -> None:
    """The writer process: for every batch received, insert it and answer (left, written, dropped).

    Rows the database refuses stay pending and are retried with the next message; beyond
    `max_pending` the oldest are dropped and counted. Ends on a "stop" message or when the
    server's end of the pipe closes (server gone), after a last write.
    """
    rows, acks = Connection(rows_fd, writable=False), Connection(acks_fd, readable=False)
    store = MetricsStore(url)
    pending: list[tuple[Any, ...]] = []
    written = dropped = failures = 0
    # Each message unpickles and builds thousands of tuples that refcounting frees; the automatic
    # collector, triggered by their count, cost a third of the writer's CPU. It runs every
    # GC_EVERY messages instead, for whatever cycles the database driver makes.
    gc.disable()
    messages = 0
    while True:
        messages += 1
        if messages % GC_EVERY == 0:
            gc.collect()
        try:
            kind, blobs = pickle.loads(rows.recv_bytes())
        except EOFError:
            kind, blobs = "stop", []
        batch = [pickle.loads(blob) for blob in blobs]
        pending.extend(db_rows(batch))
        if pending:
            try:
                insert_rows(store, pending)
            except (SQLAlchemyError, OSError):
                failures += 1
                if failures == 1:
                    log.exception("writing %d rows failed; will retry", len(pending))
                overflow = len(pending) - max_pending
                if overflow > 0:
                    del pending[:overflow]
                    dropped += overflow
                    log.error("dropped %d rows (database unavailable)", overflow)
            else:
                if failures:
                    log.info("database writable again after %d failed attempts", failures)
                failures = 0
                written += len(pending)
                pending.clear()
        try:
            acks.send_bytes(pickle.dumps((len(pending), written, dropped)))
        except OSError:  # the server is gone
            return
        if kind == "stop":
            return


class PredictionWriter:
    """Batches prediction rows off the request path into a separate writer process.

    `submit` is one in-memory queue put. A sender thread wakes every `interval` seconds (or once
    `batch_rows` are waiting), pickles what is queued into one message and pipes it to the writer
    process, which does the SQL work: database inserts never compete with request handling for
    this process's GIL. The writer is a fresh interpreter (`python -m lib.serving.prediction_log`).
    """

    def __init__(self, url: str, interval: float = 0.1, batch_rows: int = 2000, max_pending: int = 200_000) -> None:
        self.url = url
        self.interval = interval
        self.batch_rows = batch_rows
        self.max_pending = max_pending
        self._sent = 0
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self._left = 0
        self._queue: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()  # (rows, pickled Item)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._process: subprocess.Popen | None = None
        self._rows: Connection | None = None
        self._acks: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-sender", daemon=True)

    def start(self) -> PredictionWriter:
        """Launch the writer process and the sender thread that feeds it; a no-op once started."""
        if self._process is not None:
            return self
        rows_r, rows_w = os.pipe()
        acks_r, acks_w = os.pipe()
        cmd = [sys.executable, "-m", "lib.serving.prediction_log", "--url", self.url, "--rows-fd", str(rows_r),
               "--acks-fd", str(acks_w), "--max-pending", str(self.max_pending)]  # fmt: skip
        self._process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, pass_fds=(rows_r, acks_w), stdin=subprocess.DEVNULL)
        os.close(rows_r)
        os.close(acks_w)
        self._rows = Connection(rows_w, readable=False)
        self._acks = Connection(acks_r, writable=False)
        self._thread.start()
        return self

    @property
    def pid(self) -> int | None:
        """The writer process's pid, None before `start`."""
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        """Whether the writer process is running (exported as a Prometheus gauge)."""
        return self._process is not None and self._process.poll() is None

    @property
    def backlog(self) -> int:
        """Rows submitted but neither written nor dropped yet."""
        return self.submitted - self.written - self.dropped

    def submit(self, rows: Item) -> None:
        """Queue one request's rows (a PredictionBatch, or PredictionRows); never blocks on the database.

        They are pickled here, into one bytes object: queued as objects, a 100-record request's
        thousands of values outlived the request until the next send, and the garbage collector
        walked them again and again (half the server's CPU on 100-record batches, measured).
        """
        count = row_count(rows)
        blob = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        self.submitted += count
        self._queue.put((count, blob))
        if self.submitted - self._sent >= self.batch_rows:  # a burst: send before the interval ends
            self._wake.set()

    def _exchange(self, kind: str, timeout: float | None) -> None:
        """Send what is queued (with `kind`) and wait for the writer's answer; caller holds the lock."""
        self._wake.clear()
        batch: list[tuple[int, bytes]] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        count = sum(n for n, _ in batch)
        self._sent += count
        if not batch and kind == "rows" and not self._left:
            return
        if self._rows is None or self._acks is None:
            raise MetricsStoreError("the prediction writer was never started")
        blobs = [blob for _, blob in batch]
        try:
            self._rows.send_bytes(pickle.dumps((kind, blobs), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self.dropped += count
            raise
        if timeout is not None and not self._acks.poll(timeout):
            raise MetricsStoreError(f"prediction log did not answer within {timeout:.0f}s")
        self._left, self.written, self.dropped = pickle.loads(self._acks.recv_bytes())

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything submitted so far is in the database (feedback needs its uuids there)."""
        if not self._lock.acquire(timeout=timeout):
            raise MetricsStoreError(f"prediction log busy for more than {timeout:.0f}s")
        try:
            if not self.alive:
                raise MetricsStoreError("the prediction writer is not running (see the server log)")
            self._exchange("flush", timeout)
        except (OSError, EOFError) as exc:
            raise MetricsStoreError(f"the prediction writer stopped: {exc}") from exc
        finally:
            self._lock.release()
        if self._left:
            raise MetricsStoreError(f"{self._left} logged predictions are not yet written to {self.url}")

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the sender thread and the writer process (server shutdown)."""
        if self._process is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            if self.alive:
                try:
                    self._exchange("stop", timeout)
                except (OSError, EOFError, MetricsStoreError) as exc:
                    log.error("prediction log: the writer did not stop cleanly: %s", exc)
            for conn in (self._rows, self._acks):
                if conn is not None:
                    conn.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("prediction writer pid %d did not exit; killing it", self._process.pid)
            self._process.kill()
            self._process.wait()
        if self._left:
            log.error("prediction log: %d rows could not be written before shutdown", self._left)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            with self._lock:
                if self._stopping:
                    return
                try:
                    self._exchange("rows", None)
                except (OSError, EOFError):
                    break
        if self._stopping:
            return
        log.error(
            "prediction writer process died (exit code %s): predictions are no longer logged",
            self._process.poll() if self._process else None,
        )
        while not self._stopping:  # count what can no longer be logged
            self._wake.wait(self.interval)
            self._wake.clear()
            while True:
                try:
                    self.dropped += self._queue.get_nowait()[0]
                except queue.Empty:
                    break


def build_parser() -> ArgumentParser:
    """Arguments of the writer process, which PredictionWriter passes; not meant for a person."""
    parser = ArgumentParser(
        prog="python -m lib.serving.prediction_log",
        description="The prediction-log writer process (started by PredictionWriter, not by hand).",
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows-fd", type=int, required=True)
    parser.add_argument("--acks-fd", type=int, required=True)
    parser.add_argument("--max-pending", type=int, default=200_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the writer process."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on a foreground server: the server stops us
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s prediction-writer: %(message)s")
    # run as `python -m`, this file is __main__: the importable module's classes are the ones pickled
    from lib.serving import prediction_log

    prediction_log.serve_writer(args.url, args.rows_fd, args.acks_fd, args.max_pending)
    return 0


if __name__ == "__main__":
    sys.exit(main())
