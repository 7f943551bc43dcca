"""The served booster compiled to C (treelite + tl2cgen): XGBoost's probabilities without its per-call cost.

Why: `Booster.inplace_predict` costs ~100 µs per call even for one row on one thread (config JSON,
array-interface parsing, a proxy DMatrix in C++), a quarter of a single-record request. The same
trees compiled to a shared library score a row in a few µs. The server starts on XGBoost and
switches once the compiled forest is built (in the background, see `ModelHolder`), cached under
`<run_dir>/compiled/` by the booster's hash, and checked against XGBoost on `check_matrix` rows:
a forest that differs by more than `TOLERANCE` is never used. Without a C compiler the server
keeps scoring with XGBoost and says so once in its log.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from lib.features import CATEGORIES, NUMERIC_RANGES, FeatureSet

log = logging.getLogger(__name__)

# Largest allowed |compiled - XGBoost| probability on the check rows. Both sum float32 leaf values,
# in a different order: over the ~2,000 trees of a full-data model that alone moves a probability
# by up to ~2e-6 (seen: 1.07e-6 to 1.91e-6), far below any decision threshold's resolution.
TOLERANCE = 1e-5
COMPILER = "gcc"
# -O1: half of -O3's compile time for ~100 trees, the same prediction speed within noise here (-O0: 2x slower)
COMPILE_OPTIONS = ["-O1"]


class CompileError(RuntimeError):
    """The forest could not be compiled, or it does not reproduce XGBoost's probabilities."""


def check_matrix(features: FeatureSet, rows: int = 2000, seed: int = 0) -> np.ndarray:
    """Encoded rows that walk every kind of branch: each category, unknown ones (NaN), numeric ranges, missing."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, len(features.columns)), dtype=np.float32)
    for j, col in enumerate(features.columns):
        if col in CATEGORIES:
            out[:, j] = rng.integers(0, len(CATEGORIES[col]) + 1, rows)  # the last code is out of vocabulary
            out[out[:, j] == len(CATEGORIES[col]), j] = np.nan
        else:
            lo, hi = NUMERIC_RANGES[col]
            # most rows near the low end, where real values and split points are; some over the whole range
            near = rng.integers(lo, min(hi, lo + 3000) + 1, rows)
            out[:, j] = np.where(rng.random(rows) < 0.9, near, rng.integers(lo, hi + 1, rows))
    out[rng.random(out.shape) < 0.05] = np.nan
    return out


# Up to this many rows, call the library's own per-row `predict` (~2.5 µs a row, a ctypes call each)
# instead of tl2cgen's batch predictor (~11 µs per call for its DMatrix and output, then ~1.5 µs a row).
DIRECT_ROWS = 8


class CompiledForest:
    """A compiled booster: `proba(matrix)` gives the probabilities `inplace_predict` gives."""

    def __init__(self, libpath: Path) -> None:
        import tl2cgen

        self._tl2cgen = tl2cgen
        self.libpath = libpath
        self.predictor = tl2cgen.Predictor(str(libpath), nthread=1)
        # the generated code's entry point: void predict(union Entry* row, int pred_margin, float* out),
        # which adds every tree's leaf and the base score to *out, then applies the sigmoid
        self._lib = ctypes.CDLL(str(libpath))
        self._predict_row = self._lib.predict
        self._predict_row.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._predict_row.restype = None

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities (float32) of encoded rows; NaN is a missing value, as for XGBoost."""
        if len(matrix) <= DIRECT_ROWS:
            return self.proba_rows(matrix)
        return self.predictor.predict(self._tl2cgen.DMatrix(matrix, missing=np.nan)).reshape(-1)

    def proba_rows(self, matrix: np.ndarray) -> np.ndarray:
        """The same, one `predict` call per row: the generated code reads a missing value as the int -1."""
        rows = np.array(matrix, dtype=np.float32, order="C")  # a copy: missing values are rewritten
        rows.view(np.int32)[np.isnan(rows)] = -1
        out = np.zeros(len(rows), dtype=np.float32)
        data, result, stride = rows.ctypes.data, out.ctypes.data, rows.shape[1] * 4
        for i in range(len(rows)):
            self._predict_row(data + i * stride, 0, result + 4 * i)
        return out


_BUILDS: dict[Path, threading.Lock] = {}
_BUILDS_GUARD = threading.Lock()


def _build_lock(libpath: Path) -> threading.Lock:
    """One lock per library, so a model served again while its first compile runs waits for it.

    07 then two rollbacks would otherwise compile the same model twice at once (on 2 cores).
    """
    with _BUILDS_GUARD:
        return _BUILDS.setdefault(libpath, threading.Lock())


def _digest(raw: bytes) -> str:
    import tl2cgen
    import treelite

    tag = f"{treelite.__version__}/{tl2cgen.__version__}/{' '.join(COMPILE_OPTIONS)}".encode()
    return hashlib.sha256(tag + raw).hexdigest()[:20]


def _build(booster: xgb.Booster, libpath: Path, tl2cgen: Any, treelite: Any) -> None:
    """Compile `booster` into `libpath`, atomically: a concurrent server finds a whole library or none."""
    model = treelite.frontend.from_xgboost(booster)
    with tempfile.TemporaryDirectory(dir=libpath.parent, prefix=".build-") as tmp:
        built = Path(tmp) / libpath.name
        try:
            tl2cgen.export_lib(
                model, toolchain=COMPILER, libpath=str(built), nthread=1, verbose=False, options=COMPILE_OPTIONS
            )
        except (tl2cgen.TL2cgenError, OSError) as exc:
            raise CompileError(f"compiling the forest failed: {exc}") from exc
        os.replace(built, libpath)


def lowest_priority_thread() -> None:
    """Give the calling thread, and the processes it starts (gcc), the lowest CPU priority.

    On Linux a nice value belongs to a thread and a child inherits its parent thread's, so only the
    compiler thread and its gcc yield to everything else; elsewhere this lowers the whole process.
    """
    os.setpriority(os.PRIO_PROCESS, 0, 19)


def compile_forest(raw: bytes, features: FeatureSet, cache_dir: Path) -> CompiledForest:
    """Compile (or take from the cache) the booster saved as `raw` UBJSON and check it against XGBoost.

    Works on its own copy of the booster, so the served one is never touched from this thread.
    """
    if shutil.which(COMPILER) is None:
        raise CompileError(f"no C compiler ({COMPILER}) on PATH")
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        raise CompileError(f"treelite/tl2cgen not installed ({exc})") from exc
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": 1})
    cache_dir.mkdir(parents=True, exist_ok=True)
    libpath = cache_dir / f"forest-{_digest(raw)}.so"
    with _build_lock(libpath):
        if not libpath.is_file():
            _build(booster, libpath, tl2cgen, treelite)
    forest = CompiledForest(libpath)
    matrix = check_matrix(features)
    want = booster.inplace_predict(matrix, validate_features=False)
    for got in (forest.proba(matrix), forest.proba_rows(matrix)):  # the batch and the per-row path
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        if got.shape != want.shape or not diff <= TOLERANCE:
            raise CompileError(f"the compiled forest differs from XGBoost by {diff:.3g} (tolerance {TOLERANCE:g})")
    return forest
