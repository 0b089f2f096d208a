"""Simulated outbreaks (dev seed): our alarms equal R's; FPR / POD table beside R's summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartcare.publichealth.aberration.evaluation import (
    METHODS,
    SIM_TAG,
    detect_simulated,
    evaluate_simulated,
    false_alarm_rate,
    probability_of_detection,
    summarize_detection,
)


@pytest.fixture(scope="module")
def sim_dir(shared_data):
    return shared_data / "publichealth" / "simulated_outbreaks"


def test_rates_on_a_toy_table():
    alarm = np.array([1, 0, np.nan, 1, 0, 1])
    label = np.array([0, 0, 0, 1, 1, 1])
    assert false_alarm_rate(alarm, label) == 0.5  # NA left out, as R's na.rm=TRUE
    assert probability_of_detection(alarm, label == 1, np.array([1, 1, 1, 1, 2, 2])) == 1.0


def test_alarms_equal_r_on_a_subset(sim_dir):
    """Two scenarios (low counts S1, high counts S5), 6 replicates each, all five detectors."""
    series = pd.read_csv(sim_dir / f"noufaily_style_series_{SIM_TAG}.csv")
    series = series[series["scenario"].isin(["S1", "S5"]) & (series["rep"] <= 6)]
    ours = detect_simulated(series)
    ref = pd.read_csv(sim_dir / f"ref_alarms_eval_window_{SIM_TAG}.csv")
    joined = ours.merge(ref, on=["scenario", "rep", "t"], suffixes=("", "_r"), validate="1:1")
    assert len(joined) == 12 * 52
    for m in METHODS:
        a, b = joined[m].to_numpy(float), joined[m + "_r"].to_numpy(float)
        assert np.all((a == b) | (np.isnan(a) & np.isnan(b))), m
    table = summarize_detection(ours)
    assert set(table["method"]) == set(METHODS) and len(table) == 10


@pytest.mark.slow
def test_detection_table_equals_r(shared_data):
    """All 300 series: FPR, sensitivity and POD per scenario equal R's reference summary."""
    table = evaluate_simulated(shared_data)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\n", table.round(4).to_string(index=False))
    assert len(table) == 30
    for col in ("fpr_weeks", "sensitivity_weeks", "pod_eval_outbreak"):
        np.testing.assert_allclose(table[col], table[f"r_{col}"], rtol=1e-12)
    assert (table["alarm_agreement"] == 1.0).all()
