"""The served model and its hot swap.

`ModelHolder.current` is the one reference request handlers read: a request takes it once and
finishes on that model even if a swap happens meanwhile. A reload resolves the alias to a version,
loads that exact version with `mlflow.pyfunc.load_model`, warms it up and only then replaces the
reference (a single assignment, atomic under the GIL), so no request ever sees a half-loaded model.

The decision threshold travels with the version: the model-version tag `decision_threshold` (a
float in (0, 1)) if set, else `lib.metrics.DEFAULT_THRESHOLD`; a swap brings the new version's.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from lib.config import Settings
from lib.features import CATEGORIES, NUMERIC_RANGES, FeatureSet, encode_records
from lib.metrics import DEFAULT_THRESHOLD
from lib.model import BankModel
from lib.registry import CHAMPION, VersionInfo, get_alias
from lib.serving.compiled import CompiledForest, CompileError, compile_forest, lowest_priority_thread

log = logging.getLogger(__name__)


class ServingError(RuntimeError):
    """The server cannot serve; the message says what to run or fix."""


@dataclass(frozen=True)
class LoadedModel:
    """A model in memory with the registry facts /version reports."""

    model: BankModel
    info: VersionInfo
    loaded_at: datetime
    threshold: float = DEFAULT_THRESHOLD
    forest: CompiledForest | None = None  # the booster compiled to C, once built (same probabilities)

    @property
    def name(self) -> str:
        """Registered model name of the served version."""
        return self.info.name

    @property
    def version(self) -> str:
        """Registry version number of the served model, as a string."""
        return self.info.version

    @property
    def features(self) -> FeatureSet:
        """The feature set the model was trained with, which requests are checked against."""
        return self.model.features

    @property
    def engine(self) -> str:
        """What scores requests: "compiled" (the C forest) or "xgboost" (until it is built, or without a compiler)."""
        return "compiled" if self.forest is not None else "xgboost"

    def predict_records(self, records: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validated dict records → (probabilities, 0/1 at this version's threshold); the hot path."""
        if self.forest is None:
            return self.model.predict_records(records, threshold=self.threshold)
        proba = self.forest.proba(encode_records(records, self.features))
        return proba, (proba >= self.threshold).astype(np.int64)

    def predict_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same for rows already encoded (`lib.serving.columnar`): what `encode_records` gives."""
        if self.forest is None:
            proba = self.model.booster.inplace_predict(matrix, validate_features=False)
        else:
            proba = self.forest.proba(matrix)
        return proba, (proba >= self.threshold).astype(np.int64)


# What a failed reload can raise while the registry or artifact store is briefly unavailable or a
# version is unusable; the watcher logs it and keeps serving, anything else is a bug and ends the thread.
RELOAD_ERRORS = (ServingError, MlflowException, SQLAlchemyError, OSError, ValueError)


def example_record(features: FeatureSet) -> dict[str, object]:
    """A valid record (range minimums, first categories) to warm a model up before it serves."""
    return {col: CATEGORIES[col][0] if col in CATEGORIES else NUMERIC_RANGES[col][0] for col in features.columns}


THRESHOLD_TAG = "decision_threshold"


def decision_threshold(info: VersionInfo) -> float:
    """The version's `decision_threshold` tag, or the default; a tag that is not in (0, 1) is refused."""
    text = info.tags.get(THRESHOLD_TAG)
    if text is None:
        return DEFAULT_THRESHOLD
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise ServingError(
            f"version {info.version} has {THRESHOLD_TAG}={text!r}: it must be a number between 0 and 1 "
            "(exclusive); fix the tag in the registry"
        )
    return value


def load_version(info: VersionInfo) -> LoadedModel:
    """Load exactly `info.version` through the standard pyfunc loader and warm it up."""
    threshold = decision_threshold(info)
    pyfunc = mlflow.pyfunc.load_model(info.uri)
    model = pyfunc.unwrap_python_model()
    if not isinstance(model, BankModel):
        raise ServingError(f"{info.uri} is a {type(model).__name__}, not a BankModel: register a run of 03_train.py")
    model.predict_records([example_record(model.features)])
    return LoadedModel(model=model, info=info, loaded_at=datetime.now(timezone.utc), threshold=threshold)


class ModelHolder:
    """Holds the served model; reloads it when the alias moves (on request or by polling)."""

    def __init__(self, settings: Settings, alias: str = CHAMPION) -> None:
        self.settings = settings
        self.alias = alias
        self.current: LoadedModel | None = None
        self.check: Callable[[LoadedModel], None] | None = None
        self.on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.compile = True  # build the compiled forest after each load (False: XGBoost only)
        self._compiler: threading.Thread | None = None

    def resolve(self) -> VersionInfo:
        """The version the alias names now, or a ServingError saying to run 04_api_deployment.py."""
        info = get_alias(self.settings, self.alias)
        if info is None:
            name = self.settings.model_name
            raise ServingError(f"model {name} has no '{self.alias}' version: run 04_api_deployment.py first")
        return info

    def reload(self) -> tuple[LoadedModel | None, LoadedModel]:
        """Serve the version the alias points at now; returns (old, new), equal if unchanged.

        The same version with a changed `decision_threshold` tag (10_batch_scoring.py sets it after
        the version went live) keeps the loaded model and takes the new threshold.
        """
        with self._lock:
            old = self.current
            info = self.resolve()
            if old is not None and old.version == info.version:
                threshold = decision_threshold(info)
                if threshold != old.threshold:
                    self.current = replace(old, info=info, threshold=threshold)
                    log.info("version %s: decision threshold %g (was %g)", old.version, threshold, old.threshold)
                    return old, self.current
                return old, old
            new = load_version(info)
            if self.check is not None:
                self.check(new)
            self.current = new
            log.info("serving %s version %s (was %s)", new.name, new.version, old.version if old else "-")
            if self.on_swap is not None:
                self.on_swap(old, new)
            if self.compile:
                self._compiler = threading.Thread(
                    target=self._compile, args=(new, new.model.booster.save_raw("ubj")), name="forest-compiler",
                    daemon=True,
                )  # fmt: skip
                self._compiler.start()
            return old, new

    def _compile(self, loaded: LoadedModel, raw: bytearray) -> None:
        """Build the compiled forest for `loaded` and switch to it if that version is still served.

        The compile runs at the lowest CPU priority: building a big forest keeps gcc busy for a
        minute, and on 2 cores it would otherwise slow the requests and the jobs (a retrain, 10's
        scoring) sharing them; XGBoost serves until the compiled forest is ready.
        """
        lowest_priority_thread()
        try:
            forest = compile_forest(bytes(raw), loaded.features, self.settings.run_dir / "compiled")
        except CompileError as exc:
            log.warning("version %s: scoring with XGBoost (%s)", loaded.version, exc)
            return
        with self._lock:
            current = self.current
            if current is None or current.model is not loaded.model:
                return  # swapped meanwhile: that version gets its own compiler
            self.current = replace(current, forest=forest)
        log.info("version %s: scoring with the compiled forest (%s)", loaded.version, forest.libpath.name)

    def wait_compiled(self, timeout: float = 120.0) -> bool:
        """Wait for the last started compile to finish; True if the served model now scores compiled."""
        if self._compiler is not None:
            self._compiler.join(timeout)
        return self.current is not None and self.current.forest is not None

    def start_watcher(self, interval: float) -> None:
        """Poll the alias every `interval` seconds and swap when it moves (0 = off)."""
        if interval <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, args=(interval,), name="alias-watcher", daemon=True)
        self._watcher.start()

    def stop_watcher(self) -> None:
        """Stop the alias-watcher thread, waiting up to 10 s for it to end."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reload()
            except RELOAD_ERRORS:
                log.exception("alias watcher: reload failed; still serving %s", self.current and self.current.version)
