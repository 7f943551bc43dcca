"""The training profile: structure, the bin-edge convention, and JSON safety."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lib.features import CATEGORIES, FeatureSet
from lib.profile import (
    OTHER,
    PREDICTION_EDGES,
    SAMPLE_SIZE,
    ProfileError,
    bin_counts,
    build_profile,
    decile_edges,
    profile_data,
)


@pytest.fixture(scope="module")
def proba(bank_sample: pd.DataFrame) -> np.ndarray:
    return np.random.default_rng(1).beta(1, 6, size=len(bank_sample))


def test_profile_structure(bank_sample: pd.DataFrame, proba: np.ndarray) -> None:
    fs = FeatureSet()
    profile = build_profile(bank_sample, fs, proba)
    assert profile["n_rows"] == len(bank_sample)
    assert profile["features"] == fs.to_dict()
    assert set(profile["numeric"]) == set(fs.numeric) and "duration" not in profile["numeric"]
    assert set(profile["categorical"]) == set(fs.categorical)
    assert profile["prediction"]["edges"] == PREDICTION_EDGES
    assert json.loads(json.dumps(profile)) == profile  # plain JSON types only


def test_profile_json_is_what_log_dict_writes(bank_sample: pd.DataFrame, proba: np.ndarray) -> None:
    """Runs log the profile's text with the data part encoded once per grid: the same text as
    `mlflow.log_dict` writes (json.dump, indent 2) for the whole profile."""
    data = profile_data(bank_sample, FeatureSet())
    for p in (proba, proba[:7], None):
        assert data.json_with_prediction(p) == json.dumps(data.with_prediction(p), indent=2, default=str)


def test_counts_sum_to_rows_and_edges_increase(bank_sample: pd.DataFrame, proba: np.ndarray) -> None:
    profile = build_profile(bank_sample, FeatureSet(include_duration=True), proba)
    assert "duration" in profile["numeric"]
    for col, hist in profile["numeric"].items():
        edges = hist["edges"]
        assert sum(hist["counts"]) == len(bank_sample), col
        assert len(hist["counts"]) == len(edges) - 1, col
        assert all(a < b for a, b in zip(edges, edges[1:], strict=False)), col
        assert edges[0] == bank_sample[col].min() and edges[-1] == bank_sample[col].max(), col
        assert len(hist["sample"]) == len(bank_sample)  # fewer rows than SAMPLE_SIZE: all of them
    assert sum(profile["prediction"]["counts"]) == len(proba)


def test_frequencies_cover_vocabulary_and_sum_to_one(bank_sample: pd.DataFrame) -> None:
    profile = build_profile(bank_sample, FeatureSet(), None)
    assert profile["prediction"] is None
    for col, entry in profile["categorical"].items():
        freqs = entry["frequencies"]
        assert list(freqs) == list(CATEGORIES[col])
        assert sum(freqs.values()) == pytest.approx(1.0)
        assert freqs[bank_sample[col].mode()[0]] == pytest.approx(
            (bank_sample[col] == bank_sample[col].mode()[0]).mean()
        )


def test_out_of_vocabulary_values_are_kept_under_other(bank_sample: pd.DataFrame) -> None:
    df = bank_sample.copy()
    df.loc[:9, "job"] = "astronaut"
    freqs = build_profile(df, FeatureSet(), None)["categorical"]["job"]["frequencies"]
    assert freqs[OTHER] == pytest.approx(10 / len(df))
    assert sum(freqs.values()) == pytest.approx(1.0)


def test_sample_is_capped_and_seeded(bank_full: pd.DataFrame) -> None:
    first = build_profile(bank_full, FeatureSet(), None)["numeric"]["balance"]["sample"]
    second = build_profile(bank_full, FeatureSet(), None)["numeric"]["balance"]["sample"]
    assert len(first) == SAMPLE_SIZE and first == second
    assert set(first) <= set(bank_full["balance"].tolist())


def test_bin_counts_convention() -> None:
    edges = [0.0, 10.0, 20.0, 30.0]
    # left-closed bins; the outer edges act as -inf/+inf; the maximum falls in the last bin
    assert bin_counts([-5, 0, 9.9, 10, 19, 20, 30, 99], edges) == [3, 2, 3]
    assert bin_counts([1.0, 0.0, 0.05, 0.95], PREDICTION_EDGES) == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    with pytest.raises(ProfileError, match="2 edges"):
        bin_counts([1], [0.0])


def test_decile_edges_deduplicate_and_handle_constants() -> None:
    pdays = np.array([-1] * 85 + list(range(100, 1600, 100)))
    edges = decile_edges(pdays)
    assert edges[0] == -1 and edges[-1] == 1500 and len(edges) == len(set(edges)) < 11
    assert edges == pytest.approx([-1.0, 510.0, 1500.0])  # q0..q0.8 are all -1; q0.9 interpolates
    assert bin_counts(pdays, edges) == [90, 10]
    assert decile_edges(np.array([3, 3, 3])) == [3.0, 3.0]
    assert bin_counts([1, 3, 7], [3.0, 3.0]) == [3]


def test_empty_frame_and_missing_column_are_errors(bank_sample: pd.DataFrame) -> None:
    with pytest.raises(ProfileError, match="empty"):
        build_profile(bank_sample.iloc[:0], FeatureSet(), None)
    with pytest.raises(ProfileError, match="pdays"):
        build_profile(bank_sample.drop(columns=["pdays"]), FeatureSet(), None)
