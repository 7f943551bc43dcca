"""The compiled forest (treelite + tl2cgen, built with gcc) gives XGBoost's probabilities within 1e-6
on these small models (the server accepts up to `compiled.TOLERANCE`), on real rows and on rows with
unknown categories and missing values, for both kinds of categorical split; it is cached by the
booster's hash and built once; without a compiler the server keeps scoring with XGBoost."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from lib.config import Settings
from lib.features import TARGET, FeatureSet, encode_frame, labels_to_int
from lib.serving import compiled
from lib.serving.loader import ModelHolder, example_record

pytestmark = pytest.mark.integration

FEATURES = FeatureSet()


def booster(df: pd.DataFrame, **params) -> xgb.Booster:
    """A booster trained like lib.training: categorical features as codes, hist trees."""
    x = encode_frame(df, FEATURES)
    dm = xgb.DMatrix(x, label=labels_to_int(df[TARGET]), feature_names=list(FEATURES.columns),
                     feature_types=FEATURES.feature_types, enable_categorical=True)  # fmt: skip
    base = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 1}
    return xgb.train({**base, **params}, dm, num_boost_round=40)


@pytest.mark.parametrize("onehot", [1, 64], ids=["partition-splits", "one-hot-splits"])
def test_compiled_probabilities_match_xgboost(bank_sample: pd.DataFrame, tmp_path, onehot: int) -> None:
    bst = booster(bank_sample, max_cat_to_onehot=onehot)
    forest = compiled.compile_forest(bytes(bst.save_raw("ubj")), FEATURES, tmp_path)
    real = encode_frame(bank_sample, FEATURES)
    rng = np.random.default_rng(1)
    holes = real.copy()
    holes[rng.random(holes.shape) < 0.2] = np.nan  # missing values and unknown categories
    for matrix in (real, holes, compiled.check_matrix(FEATURES, rows=5000, seed=3), real[:1]):
        want = bst.inplace_predict(matrix, validate_features=False)
        for got in (forest.proba(matrix), forest.proba_rows(matrix)):  # batch and per-row calls
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_the_compiled_library_is_cached_by_booster(bank_sample: pd.DataFrame, tmp_path) -> None:
    raw = bytes(booster(bank_sample.head(2000)).save_raw("ubj"))
    first = compiled.compile_forest(raw, FEATURES, tmp_path)
    built = first.libpath.stat().st_mtime_ns
    again = compiled.compile_forest(raw, FEATURES, tmp_path)
    assert again.libpath == first.libpath and again.libpath.stat().st_mtime_ns == built
    other = compiled.compile_forest(bytes(booster(bank_sample.head(3000)).save_raw("ubj")), FEATURES, tmp_path)
    assert other.libpath != first.libpath
    assert not list(tmp_path.glob(".build-*"))  # no half-built leftovers


def test_the_same_model_served_twice_at_once_is_compiled_once(
    bank_sample: pd.DataFrame, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """07 then two quick rollbacks start two compiles of one model: the second waits for the first."""
    raw = bytes(booster(bank_sample.head(2000)).save_raw("ubj"))
    builds = []
    real_build = compiled._build

    def counted(*args):
        builds.append(args[1])
        real_build(*args)

    monkeypatch.setattr(compiled, "_build", counted)
    with ThreadPoolExecutor(max_workers=2) as pool:
        forests = list(pool.map(lambda _: compiled.compile_forest(raw, FEATURES, tmp_path), range(2)))
    assert len(builds) == 1
    assert forests[0].libpath == forests[1].libpath and forests[0].libpath.is_file()


def test_without_a_compiler_the_holder_scores_with_xgboost(
    registered_model: tuple[Settings, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = registered_model
    settings = dataclasses.replace(settings, run_dir=settings.root / "run-nocc")
    monkeypatch.setattr(compiled, "COMPILER", "no-such-compiler-xyz")
    holder = ModelHolder(settings)
    holder.reload()
    assert holder.wait_compiled() is False
    assert holder.current is not None and holder.current.engine == "xgboost"
    proba, _ = holder.current.predict_records([example_record(FEATURES)])
    assert proba.shape == (1,)


def test_the_holder_switches_to_the_compiled_forest(registered_model: tuple[Settings, list[str]]) -> None:
    settings, _ = registered_model
    holder = ModelHolder(settings)
    holder.reload()
    before = holder.current
    assert holder.wait_compiled() is True
    after = holder.current
    assert after is not None and before is not None
    assert after.engine == "compiled" and after.version == before.version and after.model is before.model
    records = [example_record(FEATURES), {**example_record(FEATURES), "job": "retired", "age": 70}]
    slow, _ = before.predict_records(records)
    fast, _ = after.predict_records(records)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)
    # a second holder (a restart) finds the library in the cache
    again = ModelHolder(settings)
    again.reload()
    assert again.wait_compiled() is True
    assert again.current is not None and again.current.forest is not None
    assert again.current.forest.libpath == after.forest.libpath  # type: ignore[union-attr]


def test_the_compiler_thread_and_its_gcc_run_at_the_lowest_priority_alone() -> None:
    import os
    import subprocess
    import threading

    seen: dict[str, int] = {}

    def compiler_like() -> None:
        compiled.lowest_priority_thread()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, 0)
        child = subprocess.run(["sh", "-c", "ps -o ni= -p $$"], capture_output=True, text=True, check=True)
        seen["child"] = int(child.stdout.strip())

    worker = threading.Thread(target=compiler_like)
    worker.start()
    worker.join()
    assert seen == {"thread": 19, "child": 19}
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the server's other threads keep their priority
