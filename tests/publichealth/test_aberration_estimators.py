"""Detector contract, GLM internals against statsmodels, option coverage and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from smartcare.publichealth.aberration.base import NotFittedError
from smartcare.publichealth.aberration.farrington import FarringtonConfig, FarringtonFlexible
from smartcare.publichealth.aberration.farrington_design import build_designs, reference_positions
from smartcare.publichealth.aberration.glm import fit_quasipoisson, fit_seasonal
from smartcare.publichealth.aberration.methods import DETECTORS, detect_frame, make_detector
from smartcare.publichealth.series import CountSeries, SeriesError


@pytest.fixture(scope="module")
def campy(shared_data) -> CountSeries:
    d = pd.read_csv(shared_data / "publichealth" / "r_reference_outputs" / "input_series_campyDE.csv")
    return CountSeries(d["observed"].to_numpy(), d["date"].to_numpy().astype("datetime64[D]"), location="DE")


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_contract(name, campy):
    """One conformance test for every registered detector (scikit-learn-like contract)."""
    det = make_detector(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        det.config.alpha = 0.5  # config is a frozen dataclass
    with pytest.raises(NotFittedError):
        det.predict()
    assert det.fit(campy) is det and det.series_ is campy
    rng = np.arange(len(campy) - 8, len(campy))
    res = det.predict(rng)
    np.testing.assert_array_equal(res.index, rng)
    for arr in (res.observed, res.upperbound, res.alarm, res.score):
        assert arr.shape == (8,)
    assert set(np.unique(res.alarm[~np.isnan(res.alarm)])) <= {0.0, 1.0}
    assert np.all(res.upperbound[~np.isnan(res.upperbound)] >= 0)
    if name != "cusum":  # CUSUM restarts at the range start by design; the others judge weeks independently
        np.testing.assert_allclose(det.detect(campy, rng[-3:]).upperbound, res.upperbound[-3:], rtol=1e-12)


def test_seasonal_irls_equals_generic_qr_and_statsmodels(campy):
    designs = build_designs(campy, np.arange(480, 490), 4, 3, 10, 26, False)
    d = designs[0]
    t = d.wtime - d.wtime.mean()
    res = fit_seasonal(t[None], d.level[None], d.n_levels, d.y[None], np.ones((1, d.y.size)),
                       np.zeros((1, d.y.size)), trend=True)
    x = res.row_x(t[None], d.level[None])  # (1, n, p)
    ref = fit_quasipoisson(x, d.y[None], np.ones((1, d.y.size)))
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-9)
    np.testing.assert_allclose(res.hat(t[None], d.level[None]), ref.hat(), rtol=1e-8, atol=1e-12)
    sm_fit = sm.GLM(d.y, x[0], family=sm.families.Poisson()).fit(scale="X2", tol=1e-12)
    np.testing.assert_allclose(res.coef[0], sm_fit.params, rtol=1e-7)
    # R (and we) weight the Pearson dispersion with the last iteration's start weights: tiny difference
    np.testing.assert_allclose(res.dispersion[0], sm_fit.scale, rtol=1e-5)


def test_weekly_reference_weeks_follow_r_calendar_rule(campy):
    """Dated weekly series: same weekday, nearest to the anniversary (R referencetimepoints)."""
    pos = reference_positions(campy, np.array([521]), 5)[0]
    lags = pos[0] - pos
    assert lags[0] == 0 and set(np.diff(lags)) <= {52, 53}


def test_population_offset_scales_threshold(campy):
    """Doubling the judged week's population doubles its expected count; the NB quantile follows."""
    pop = np.full(len(campy), 1e6)
    base = CountSeries(campy.observed, campy.dates, pop)
    pop2 = pop.copy()
    pop2[-1] *= 2
    cfg = FarringtonConfig(population_offset=True, threshold_method="nbPlugin", trend=False, reweight=False)
    r1 = FarringtonFlexible(cfg).detect(base, [len(campy) - 1])
    r2 = FarringtonFlexible(cfg).detect(CountSeries(campy.observed, campy.dates, pop2), [len(campy) - 1])
    assert 1.7 * r1.upperbound[0] < r2.upperbound[0] < 2 * r1.upperbound[0]


@pytest.mark.parametrize("kw", [dict(threshold_method="muan"), dict(powertrans="1/2"), dict(powertrans="none"),
                                dict(no_periods=4, past_weeks_not_included=8), dict(reweight=False, trend=False)])
def test_farrington_options_run(kw, campy):
    res = FarringtonFlexible(FarringtonConfig(**kw)).detect(campy, np.arange(470, 522))
    assert np.isfinite(res.upperbound).all() and np.nansum(res.alarm) >= 1


def test_muan_bound_is_above_plugin(campy):
    rng = np.arange(470, 522)
    plug = FarringtonFlexible(FarringtonConfig.noufaily()).detect(campy, rng).upperbound
    muan = FarringtonFlexible(FarringtonConfig.noufaily(threshold_method="muan")).detect(campy, rng).upperbound
    assert np.all(muan >= plug) and np.any(muan > plug)


def test_all_zero_history_gives_no_alarm():
    s = CountSeries(np.zeros(300, dtype=int))
    res = FarringtonFlexible().detect(s, [299])
    assert np.isnan(res.upperbound[0]) and res.alarm[0] == 0  # fewer than 5 cases in 4 weeks


@pytest.mark.parametrize(
    "method, rng, match",
    [
        ("farrington", [100], "history too short for farringtonFlexible"),
        ("ears-c3", [5], "history too short for EARS C3"),
        ("cusum", [0], "history too short for CUSUM"),
        ("ears-c1", [600], "range ends at week 601"),
    ],
)
def test_short_history_is_named(method, rng, match, campy):
    with pytest.raises(SeriesError, match=match):
        make_detector(method).detect(campy, rng)


def test_unknown_method_and_bad_config():
    with pytest.raises(SeriesError, match="unknown method 'foo'"):
        make_detector("foo")
    with pytest.raises(SeriesError, match="threshold_method"):
        FarringtonConfig(threshold_method="Noufaily")


def test_detect_frame_multi_location_and_range(campy):
    df = pd.DataFrame({"date": np.tile(campy.dates, 2), "observed": np.tile(campy.observed, 2),
                       "location": np.repeat(["A", "B"], len(campy))})
    out, series = detect_frame(df, "farrington", "2011-06-06", "2011-06-27")
    assert list(out.columns) == ["date", "location", "observed", "upperbound", "alarm", "score"]
    assert len(out) == 8 and out["location"].tolist() == ["A"] * 4 + ["B"] * 4
    np.testing.assert_allclose(out["upperbound"][:4], out["upperbound"][4:])
    assert out["date"].iloc[0] == "2011-06-06"
