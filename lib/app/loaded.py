"""Registered versions loaded in the app process, once per version.

A registered version's model never changes, so it is loaded once (through the model server's
loader, `lib.serving.loader.load_version`: same pyfunc loading and warm-up) and kept; only its
decision threshold, a tag 10_batch_scoring.py may set later, is read again on every use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from lib.app import AppError
from lib.config import Settings
from lib.metrics import DEFAULT_THRESHOLD
from lib.model import BankModel
from lib.registry import VersionInfo, get_alias
from lib.serving.loader import THRESHOLD_TAG, ServingError, decision_threshold, load_version


@dataclass(frozen=True)
class VersionModel:
    """An alias's version now, its loaded model and the threshold it decides at."""

    alias: str
    info: VersionInfo
    model: BankModel
    threshold: float

    @property
    def threshold_source(self) -> str:
        """Where the threshold comes from: the version's tag (set by 10) or the project default."""
        return f"tag {THRESHOLD_TAG}" if THRESHOLD_TAG in self.info.tags else f"default {DEFAULT_THRESHOLD:g}"


class ModelCache:
    """At most `size` loaded versions, least recently used dropped first; safe across request threads."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._models: OrderedDict[str, BankModel] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many versions were actually loaded (the cache's own test reads it)

    def model(self, info: VersionInfo) -> BankModel:
        """The model of exactly `info.version`, loaded on first use."""
        with self._lock:
            model = self._models.get(info.uri)
            if model is not None:
                self._models.move_to_end(info.uri)
                return model
            try:
                model = load_version(info).model
            except (ServingError, MlflowException, OSError) as exc:
                raise AppError(f"cannot load {info.name} v{info.version}: {exc}") from exc
            self.loads += 1
            self._models[info.uri] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
            return model

    def for_alias(self, settings: Settings, alias: str) -> VersionModel | None:
        """The version `alias` names now with its model and threshold; None when the alias is not set."""
        info = get_alias(settings, alias)
        if info is None:
            return None
        try:
            threshold = decision_threshold(info)
        except ServingError as exc:
            raise AppError(str(exc)) from exc
        return VersionModel(alias=alias, info=info, model=self.model(info), threshold=threshold)
