"""Monitoring computations on constructed data whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.config import load_settings
from lib.monitoring import MonitoringError
from lib.monitoring.alerts import FIRING, NO_DATA, OK, evaluate_alerts, format_alerts
from lib.monitoring.drift import categorical_psi, drift_table, numeric_drift, psi
from lib.monitoring.performance import deployments, performance_by_window, select_window, summarize
from lib.profile import bin_counts, decile_edges

SETTINGS = load_settings({"PROJECT_ROOT": "/tmp/unused", "PROJECT_OWNER": "test"})


def numeric_reference(values: np.ndarray) -> dict:
    """A profile entry built as lib.profile builds it: decile edges, counts, a sample."""
    edges = decile_edges(values)
    return {"edges": edges, "counts": bin_counts(values, edges), "sample": values[:500].tolist()}


def log_frame(rows: list[tuple], start: str = "2025-01-01") -> pd.DataFrame:
    """A prediction log from (hours after start, version, prediction, probability, label, latency)."""
    t0 = pd.Timestamp(start, tz="UTC")
    return pd.DataFrame(
        {
            "event_ts": [t0 + pd.Timedelta(hours=h) for h, *_ in rows],
            "model_name": "bank-promo-test",
            "model_version": [v for _, v, *_ in rows],
            "prediction": [p for _, _, p, *_ in rows],
            "probability": [q for *_, q, _, _ in rows],
            "label": pd.array([lab for *_, lab, _ in rows], dtype="Int64"),
            "latency_ms": [ms for *_, ms in rows],
        }
    )


# --- PSI -----------------------------------------------------------------------------------


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([10, 20, 30, 40], [1, 2, 3, 4]) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_hand_computation() -> None:
    expected = psi([0.5, 0.5], [0.25, 0.75])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert expected == pytest.approx(by_hand)


def test_psi_stays_finite_with_empty_bins() -> None:
    value = psi([0, 10, 10], [10, 0, 10])
    assert math.isfinite(value) and value > 1


def test_psi_rejects_mismatched_bins() -> None:
    with pytest.raises(MonitoringError, match="equal-length"):
        psi([1, 2], [1, 2, 3])


def test_numeric_psi_same_distribution_is_small_and_ks_does_not_reject() -> None:
    rng = np.random.default_rng(0)
    ref = numeric_reference(rng.normal(40, 10, 5000))
    result = numeric_drift(rng.normal(40, 10, 2000), ref)
    assert result["psi"] < 0.05
    assert result["ks_pvalue"] > 0.01


def test_numeric_psi_of_a_shifted_distribution_exceeds_threshold() -> None:
    rng = np.random.default_rng(1)
    ref = numeric_reference(rng.normal(40, 10, 5000))
    result = numeric_drift(rng.normal(55, 10, 2000), ref)
    assert result["psi"] > SETTINGS.alert_max_psi
    assert result["ks_stat"] > 0.4 and result["ks_pvalue"] < 1e-6


def test_categorical_psi() -> None:
    freqs = {"may": 0.5, "jun": 0.3, "jul": 0.2}
    same = ["may"] * 50 + ["jun"] * 30 + ["jul"] * 20
    assert categorical_psi(same, freqs) == pytest.approx(0.0, abs=1e-3)  # only the live smoothing
    shifted = ["may"] * 10 + ["jun"] * 10 + ["oct"] * 80  # an unseen category dominates
    assert categorical_psi(shifted, freqs) > 1.0


def test_small_windows_of_undrifted_data_stay_below_threshold(bank_full: pd.DataFrame) -> None:
    """A day of simulated traffic (~150 requests) leaves rare categories empty by chance; that
    must not read as drift."""
    from lib.features import CATEGORIES, FeatureSet
    from lib.profile import build_profile

    profile = build_profile(bank_full, FeatureSet(), proba=None)
    worst = 0.0
    for seed in range(10):
        window = bank_full.sample(150, random_state=seed)
        for col in CATEGORIES:
            worst = max(worst, categorical_psi(window[col], profile["categorical"][col]["frequencies"]))
        for col, ref in profile["numeric"].items():
            worst = max(worst, numeric_drift(window[col], ref)["psi"])
    assert worst < SETTINGS.alert_max_psi


def test_drift_table_flags_only_the_drifted_feature_and_prediction() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    ages, balances, proba = rng.normal(40, 10, n), rng.normal(1000, 300, n), rng.beta(2, 8, n)
    profile = {
        "n_rows": n,
        "features": ["age", "balance", "month"],
        "numeric": {"age": numeric_reference(ages), "balance": numeric_reference(balances)},
        "categorical": {"month": {"frequencies": {"may": 0.7, "jun": 0.3}}},
        "prediction": numeric_reference(proba),
    }
    m = 1500
    current = pd.DataFrame(
        {
            "age": rng.normal(60, 10, m),  # drifted
            "balance": rng.normal(1000, 300, m),
            "month": rng.choice(["may", "jun"], m, p=[0.7, 0.3]),
            "probability": rng.beta(8, 2, m),  # drifted predictions
        }
    )
    table = drift_table(current, profile, threshold=0.2)
    assert list(table.columns) == ["feature", "kind", "psi", "ks_stat", "ks_pvalue", "drifted"]
    flagged = set(table.loc[table["drifted"], "feature"])
    assert flagged == {"age", "probability"}
    month = table.set_index("feature").loc["month"]
    assert month["kind"] == "categorical" and math.isnan(month["ks_stat"])
    assert table["psi"].is_monotonic_decreasing


def test_drift_table_names_a_missing_feature_column() -> None:
    profile = {"numeric": {"age": numeric_reference(np.arange(100.0))}, "categorical": {}, "prediction": None}
    with pytest.raises(MonitoringError, match="age"):
        drift_table(pd.DataFrame({"probability": [0.1]}), profile, 0.2)


# --- performance ---------------------------------------------------------------------------


def hand_made_log() -> pd.DataFrame:
    # Day 1, v1: 4 labelled rows, TP, TN, FP, FN -> accuracy 0.5, precision 0.5, recall 0.5.
    # Day 2, v1: 2 rows, only one labelled (TN). Day 2, v2: 2 rows, both correct (TP, TN).
    return log_frame(
        [
            (1, "1", 1, 0.9, 1, 10.0),
            (2, "1", 0, 0.2, 0, 20.0),
            (3, "1", 1, 0.7, 0, 30.0),
            (4, "1", 0, 0.4, 1, 40.0),
            (25, "1", 0, 0.1, 0, 5.0),
            (26, "1", 1, 0.8, None, 5.0),
            (30, "2", 1, 0.95, 1, 7.0),
            (31, "2", 0, 0.05, 0, 9.0),
        ]
    )


def test_performance_per_day_and_version() -> None:
    perf = performance_by_window(hand_made_log(), freq="1D")
    assert len(perf) == 3
    day1 = perf.iloc[0]
    assert day1["window_start"] == pd.Timestamp("2025-01-01", tz="UTC")
    assert (day1["requests"], day1["labeled"]) == (4, 4)
    assert day1["accuracy"] == pytest.approx(0.5)
    assert day1["precision"] == pytest.approx(0.5)
    assert day1["recall"] == pytest.approx(0.5)
    assert day1["f1"] == pytest.approx(0.5)
    assert day1["roc_auc"] == pytest.approx(0.75)  # positives 0.9, 0.4 vs negatives 0.7, 0.2
    assert day1["positive_rate"] == pytest.approx(0.5)
    assert day1["latency_p50_ms"] == pytest.approx(25.0)
    assert day1["latency_p95_ms"] == pytest.approx(np.percentile([10, 20, 30, 40], 95))
    day2_v1 = perf[(perf["model_version"] == "1") & (perf["window_start"].dt.day == 2)].iloc[0]
    assert (day2_v1["requests"], day2_v1["labeled"]) == (2, 1)
    assert day2_v1["accuracy"] == 1.0
    assert math.isnan(day2_v1["roc_auc"])  # one class only
    assert math.isnan(day2_v1["recall"])  # no positive label
    day2_v2 = perf[perf["model_version"] == "2"].iloc[0]
    assert day2_v2["accuracy"] == 1.0 and day2_v2["roc_auc"] == 1.0


def test_performance_without_version_split_pools_versions() -> None:
    perf = performance_by_window(hand_made_log(), freq="1D", by_version=False)
    assert perf["requests"].tolist() == [4, 4]
    assert perf["labeled"].tolist() == [4, 3]
    assert set(perf["model_version"]) == {"all"}


def test_performance_of_an_empty_log_is_an_empty_table() -> None:
    perf = performance_by_window(hand_made_log().iloc[0:0])
    assert perf.empty and "accuracy" in perf.columns


def test_deployments_give_first_event_per_version() -> None:
    dep = deployments(hand_made_log())
    assert dep["model_version"].tolist() == ["1", "2"]
    assert dep["first_event_ts"].iloc[1] == pd.Timestamp("2025-01-02 06:00", tz="UTC")


def test_select_window_by_hours_and_by_count() -> None:
    log = hand_made_log()
    recent = select_window(log, window_hours=8)  # newest event at hour 31 -> hours 24 < t <= 31
    assert len(recent) == 4
    assert select_window(log, last=3)["model_version"].tolist() == ["1", "2", "2"]
    with pytest.raises(MonitoringError):
        select_window(log, window_hours=1, last=1)


# --- alerts --------------------------------------------------------------------------------


def drift_rows(psis: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"feature": f, "kind": "prediction" if f == "probability" else "numeric", "psi": v,
             "ks_stat": math.nan, "ks_pvalue": math.nan, "drifted": v > 0.2}
            for f, v in psis.items()
        ]
    )  # fmt: skip


def by_name(alerts: list) -> dict:
    return {a.name: a for a in alerts}


def test_alerts_ok_when_everything_is_within_thresholds() -> None:
    good = log_frame([(h, "1", h % 2, 0.9 if h % 2 else 0.1, h % 2, 5.0) for h in range(20)])
    alerts = by_name(evaluate_alerts(good, drift_rows({"age": 0.01, "probability": 0.05}), SETTINGS))
    assert {a.status for a in alerts.values()} == {OK}
    assert alerts["accuracy"].value == 1.0 and alerts["accuracy"].threshold == SETTINGS.alert_min_accuracy


def test_alerts_fire_on_low_accuracy_drift_and_latency() -> None:
    bad = log_frame([(h, "1", 1, 0.9, 0, 80.0) for h in range(20)])
    alerts = by_name(evaluate_alerts(bad, drift_rows({"age": 0.6, "balance": 0.01, "probability": 0.3}), SETTINGS))
    assert alerts["accuracy"].status == FIRING and alerts["accuracy"].value == 0.0
    assert alerts["data_drift_psi"].status == FIRING
    assert alerts["data_drift_psi"].value == pytest.approx(0.6)
    assert "age" in alerts["data_drift_psi"].detail and "balance" not in alerts["data_drift_psi"].detail
    assert alerts["prediction_drift_psi"].status == FIRING
    assert alerts["p95_latency_ms"].status == FIRING and alerts["p95_latency_ms"].value == pytest.approx(80.0)
    assert "firing" in format_alerts(list(alerts.values()))


def test_quality_is_judged_at_the_reference_threshold_not_the_served_cut_off() -> None:
    # Served at a profit cut-off of 0.05: every answer is 1, so the served 0/1 answers are right
    # only for the positives (accuracy 0.25). The model itself ranks well: at 0.5 it is right 3 of 4.
    cut_off = log_frame(
        [(h, "1", 1, q, lab, 5.0) for h, (q, lab) in enumerate([(0.9, 1), (0.3, 0), (0.2, 0), (0.6, 0)] * 5)]
    )
    summary = summarize(cut_off)
    assert summary["accuracy"] == pytest.approx(0.75)
    assert summary["precision"] == pytest.approx(0.5) and summary["recall"] == pytest.approx(1.0)
    assert summary["positive_rate"] == 1.0  # the served cut-off's call rate
    alerts = by_name(
        evaluate_alerts(
            cut_off,
            None,
            load_settings({"PROJECT_ROOT": "/tmp/unused", "PROJECT_OWNER": "t", "ALERT_MIN_ACCURACY": "0.7"}),
        )
    )
    assert alerts["accuracy"].status == OK and alerts["accuracy"].value == pytest.approx(0.75)


def test_alerts_report_no_data_without_labels_or_drift() -> None:
    unlabelled = log_frame([(h, "1", 1, 0.9, None, 5.0) for h in range(5)])
    alerts = by_name(evaluate_alerts(unlabelled, None, SETTINGS))
    assert alerts["accuracy"].status == NO_DATA and math.isnan(alerts["accuracy"].value)
    assert alerts["data_drift_psi"].status == NO_DATA
    assert alerts["prediction_drift_psi"].status == NO_DATA
    assert alerts["p95_latency_ms"].status == OK


def test_alert_thresholds_come_from_settings() -> None:
    strict = load_settings({"PROJECT_ROOT": "/tmp/unused", "PROJECT_OWNER": "t", "ALERT_MIN_ACCURACY": "0.99"})
    mostly_right = log_frame([(h, "1", 1, 0.9, int(h > 0), 5.0) for h in range(20)])  # accuracy 0.95
    assert by_name(evaluate_alerts(mostly_right, None, SETTINGS))["accuracy"].status == OK
    assert by_name(evaluate_alerts(mostly_right, None, strict))["accuracy"].status == FIRING


# --- dashboard files -----------------------------------------------------------------------


def test_render_dashboard_writes_pngs_and_a_self_contained_html(tmp_path) -> None:
    from lib.monitoring.dashboard import render_dashboard, summary_text
    from lib.monitoring.report import MonitoringReport

    log = hand_made_log()
    window = select_window(log, window_hours=8)
    drift = drift_rows({"age": 0.5, "balance": 0.05, "probability": 0.1})
    report = MonitoringReport(
        predictions=log,
        window=window,
        performance=performance_by_window(log),
        deployments=deployments(log),
        drift=drift,
        alerts=evaluate_alerts(window, drift, SETTINGS),
        model_name="bank-promo-test",
        model_version="2",
        freq="1D",
    )
    files = render_dashboard(report, SETTINGS, out_dir=tmp_path)
    assert set(files.figures) == {"traffic", "quality", "drift"}
    for path in files.figures.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "<table" in page and "data_drift_psi" in page and 'src="http' not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "monitoring_dashboard.html",
            "monitoring_traffic.png",
            "monitoring_quality.png",
            "monitoring_drift.png",
        ]
    )  # nothing half-written left behind
    text = summary_text(report)
    assert "8 predictions" in text and "v1, v2" in text and "data_drift_psi" in text
