"""The campaign economics on hand-made examples whose answers are worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.economics import (
    CampaignEconomics,
    EconomicsError,
    EconomicsReport,
    decile_of_rank,
    evaluate_campaign,
    lift_table,
    optimal_cutoff,
    profit_curve,
    rank_order,
    thin_curve,
)

# cost 10 per call, value 30 per deposit; calling the top k rows earns 30 * subscribers - 10 * k:
# k:       1   2   3   4   5   6   7   8
# profit: 20  40  30  50  40  30  50  40   -> best 50 at k=4 (p >= 0.6) and k=7 (p >= 0.3): fewer calls win
PROBA = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
LABELS = [1, 1, 0, 1, 0, 0, 1, 0]
ECON = CampaignEconomics(cost_per_call=10, value_per_deposit=30)


def test_optimal_cutoff_on_a_known_example():
    cut = optimal_cutoff(LABELS, PROBA, ECON)
    assert cut.threshold == 0.6
    assert (cut.calls, cut.conversions, cut.profit) == (4, 3, 50.0)
    assert cut.share_called == 0.5 and cut.precision == 0.75 and cut.recall == 0.75


def test_input_order_does_not_matter():
    order = np.random.default_rng(0).permutation(len(PROBA))
    cut = optimal_cutoff(np.array(LABELS)[order], np.array(PROBA)[order], ECON)
    assert (cut.threshold, cut.profit) == (0.6, 50.0)


def test_a_dearer_call_moves_the_cutoff_up():
    # cost 20: k=1 -> 10, k=2 -> 20, k=4 -> 10, k=7 -> -20: call only the top two
    cut = optimal_cutoff(LABELS, PROBA, CampaignEconomics(20, 30))
    assert (cut.threshold, cut.calls, cut.profit) == (0.8, 2, 20.0)


def test_tied_probabilities_enter_the_curve_together():
    # the two rows at 0.5 cannot be separated by a cut-off: one point with 2 calls and 1 subscriber
    curve = profit_curve([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], ECON)
    assert curve["threshold"].tolist() == [0.9, 0.5, 0.1]
    assert curve["calls"].tolist() == [1, 3, 4]
    assert curve["conversions"].tolist() == [1, 2, 2]
    assert curve["profit"].tolist() == [20.0, 30.0, 20.0]
    assert optimal_cutoff([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], ECON).threshold == 0.5


def test_no_profitable_cutoff_is_an_error_that_names_the_amounts():
    with pytest.raises(EconomicsError, match="cost 50 per call and value 30"):
        optimal_cutoff(LABELS, PROBA, CampaignEconomics(50, 30))


@pytest.mark.parametrize(
    ("labels", "proba", "message"),
    [
        ([], [], "no rows"),
        ([1, 0], [0.5], "equally long"),
        ([2, 0], [0.5, 0.4], "0 or 1"),
        ([1, 0], [1.5, 0.4], r"\[0, 1\]"),
        ([1, 0], [math.nan, 0.4], "finite"),
    ],
)
def test_bad_inputs_are_refused(labels, proba, message):
    with pytest.raises(EconomicsError, match=message):
        optimal_cutoff(labels, proba, ECON)


@pytest.mark.parametrize(("cost", "value"), [(0, 10), (-1, 10), (5, math.inf), (5, math.nan)])
def test_amounts_must_be_positive(cost, value):
    with pytest.raises(EconomicsError, match="positive"):
        CampaignEconomics(cost, value)


def test_break_even_probability():
    assert CampaignEconomics(5, 100).break_even_probability == 0.05


def test_ranks_and_deciles():
    assert rank_order(np.array([0.2, 0.9, 0.2, 0.5])).tolist() == [1, 3, 0, 2]  # ties keep input order
    assert decile_of_rank(np.arange(1, 21), 20).tolist() == [d for d in range(1, 11) for _ in range(2)]
    assert decile_of_rank(np.array([1, 7]), 7).tolist() == [1, 9]  # fewer rows than deciles


def test_lift_and_cumulative_gains_by_decile():
    # 20 rows, 4 subscribers: the top two rows are both subscribers, the other two sit in deciles 3 and 10
    proba = np.linspace(0.95, 0.0, 20)
    labels = np.zeros(20, dtype=int)
    labels[[0, 1, 4, 19]] = 1
    table = lift_table(labels, proba)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["rows"].tolist() == [2] * 10
    assert table["lift"].iloc[0] == 5.0  # rate 1.0 over the overall 0.2
    assert table["cumulative_gain"].tolist() == [0.5, 0.5, 0.75] + [0.75] * 6 + [1.0]
    assert table["cumulative_lift"].iloc[-1] == 1.0


def test_lift_needs_rows_and_a_subscriber():
    with pytest.raises(EconomicsError, match="at least 10 rows"):
        lift_table([1, 0], [0.4, 0.3])
    with pytest.raises(EconomicsError, match="no positive"):
        lift_table([0] * 10, np.linspace(0, 1, 10))


def test_report_round_trips_through_its_json_dict():
    rng = np.random.default_rng(1)
    proba = rng.random(500)
    labels = (rng.random(500) < proba * 0.5).astype(int)
    report = evaluate_campaign(labels, proba, CampaignEconomics(2, 20))
    back = EconomicsReport.from_dict(report.to_dict())
    assert back.cutoff == report.cutoff and back.economics == report.economics
    pd.testing.assert_frame_equal(back.lift, report.lift, check_dtype=False)
    assert len(back.curve) <= 201 and back.curve["profit"].max() == report.curve["profit"].max()


def test_thin_curve_keeps_the_maximum():
    curve = pd.DataFrame({"profit": np.r_[np.zeros(500), [99.0], np.zeros(499)]})
    thin = thin_curve(curve, points=50)
    assert len(thin) <= 51 and thin["profit"].max() == 99.0
