"""Forecasting: FluSight baseline against the hub's own files, no leakage, hubverse format, CLI and HTTP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub
from smartcare.publichealth.cli import app as cli_app
from smartcare.publichealth.forecast import MODELS, forecast
from smartcare.publichealth.forecast.baseline import BaselineConfig, FluSightBaseline
from smartcare.publichealth.forecast.blend import QuantileBlend
from smartcare.publichealth.forecast.data import prepare_targets
from smartcare.publichealth.forecast.extra import ilinet_pseudo_counts
from smartcare.publichealth.forecast.gbm import GBMConfig, GlobalQuantileGBM

HEAD = "target_hospital_admissions_2022-02-05_to_2025-09-27.csv"
ARCHIVE = "target_hospital_admissions_asof_2024-04-27.csv"
LOCS = ["06", "36", "48", "50", "72"]  # California, New York, Texas, Vermont, Puerto Rico
REF = "2024-01-06"


@pytest.fixture(scope="module")
def flusight(shared_data):
    return shared_data / "publichealth" / "flusight_hosp"


@pytest.fixture(scope="module")
def targets(flusight):
    t = hub.read_targets(flusight / HEAD)
    return t[t["location"].isin(LOCS) & (t["date"] <= "2024-03-30")].reset_index(drop=True)


def tiny_gbm():
    return GlobalQuantileGBM(GBMConfig(max_iter=15, learning_rate=0.2, min_samples_leaf=20))


def tiny_blend():
    return QuantileBlend([tiny_gbm(), FluSightBaseline(BaselineConfig(nsim=5000))], (0.6, 0.4))


def test_baseline_reproduces_hub_file(flusight):
    """Fed the data the hub had on 2024-04-27, our baseline gives the hub's FluSight-baseline quantiles."""
    asof = hub.read_targets(flusight / ARCHIVE)
    asof = asof[asof["date"] >= "2021-12-04"]  # hub 2023-24 training window start
    ours = forecast(asof[asof["location"].isin(["36", "50"])], "2024-04-27", FluSightBaseline())
    shipped = hub.read_forecasts(flusight / "forecasts_FluSight-ensemble_baseline_2023-24.csv")
    shipped = shipped[(shipped["model_id"] == "FluSight-baseline") & (shipped["reference_date"] == "2024-04-27")]
    keys = ["location", "horizon", "output_type_id"]
    both = ours.merge(shipped[keys + ["value"]], on=keys, suffixes=("_ours", "_hub"))
    assert len(both) == 2 * 4 * 23
    diff = np.abs(both["value_ours"] - both["value_hub"])
    h0 = both["horizon"] == 0  # one step ahead: exact up to the hub's 0.01 rounding and sampling grid
    assert diff[h0].max() < 0.6
    # later horizons shuffle residuals: Monte Carlo noise of 1e5 draws only
    assert (diff[~h0] <= 2 + 0.03 * both.loc[~h0, "value_hub"]).all()


def test_baseline_median_is_last_value_and_spread_grows(targets):
    fc = forecast(targets, REF, "flusight-baseline")
    last = targets[targets["date"] < REF].groupby("location")["value"].last()
    med = fc[fc["output_type_id"] == 0.5].pivot(index="location", columns="horizon", values="value")
    for h in range(4):
        np.testing.assert_allclose(med[h].to_numpy(), last.reindex(med.index).to_numpy())
    width = fc[fc["output_type_id"] == 0.975].set_index(["location", "horizon"])["value"] - fc[
        fc["output_type_id"] == 0.025].set_index(["location", "horizon"])["value"]
    assert (width.unstack()[3] >= width.unstack()[0]).all()


@pytest.mark.parametrize("make", [FluSightBaseline, tiny_gbm, tiny_blend], ids=["baseline", "gbm", "blend"])
def test_hubverse_format_and_monotone(targets, make):
    fc = forecast(targets, REF, make())
    assert list(fc.columns) == list(hub.HUB_COLUMNS)
    hub.validate_forecasts(fc)  # levels, dates, monotone quantiles
    assert set(fc["location"]) == set(LOCS)
    assert sorted(fc["horizon"].unique()) == [0, 1, 2, 3]
    assert (fc["target"] == "wk inc flu hosp").all()
    assert len(fc) == len(LOCS) * 4 * 23
    assert (fc["value"] >= 0).all()
    wide = fc.pivot_table(index=["location", "horizon"], columns="output_type_id", values="value")
    assert (np.diff(wide.to_numpy(), axis=1) >= 0).all()
    assert fc["target_end_date"].iloc[-1] == "2024-01-27"


@pytest.mark.parametrize("make", [FluSightBaseline, tiny_gbm, tiny_blend], ids=["baseline", "gbm", "blend"])
def test_no_leakage(targets, make):
    """Changing or adding rows dated on/after the reference date leaves the forecast unchanged."""
    ref = pd.Timestamp(REF)
    base = forecast(targets, ref, make())
    tampered = targets.copy()
    later = tampered["date"] >= ref
    assert later.sum() > 0
    tampered.loc[later, "value"] = tampered.loc[later, "value"] * 50 + 7
    extra = tampered[tampered["date"] == tampered["date"].max()].assign(
        date=tampered["date"].max() + pd.Timedelta(weeks=1), value=99999.0)
    changed = forecast(pd.concat([tampered, extra]), ref, make())
    pd.testing.assert_frame_equal(base, changed)
    # while changing a row before the date does change it
    earlier = targets.copy()
    earlier.loc[earlier["date"] == ref - pd.Timedelta(weeks=1), "value"] += 500
    assert not np.allclose(forecast(earlier, ref, make())["value"], base["value"])


def test_blend_is_weighted_quantile_mean(targets):
    hist = prepare_targets(targets[targets["date"] < REF])
    a = FluSightBaseline(BaselineConfig(nsim=5000)).fit(hist).predict(REF)
    b = tiny_gbm().fit(hist).predict(REF)
    mix = QuantileBlend([FluSightBaseline(BaselineConfig(nsim=5000)), tiny_gbm()], (1, 3)).fit(hist).predict(REF)
    np.testing.assert_allclose(mix["value"], 0.25 * a["value"] + 0.75 * b["value"])
    with pytest.raises(SmartcareError, match="weight"):
        QuantileBlend([tiny_gbm()], (1, 2)).fit(hist)


def test_gbm_is_global_and_refuses_predict_before_fit(targets):
    model = tiny_gbm()
    with pytest.raises(SmartcareError, match="before fit"):
        model.predict(REF)
    model.fit(prepare_targets(targets[targets["date"] < REF]))
    assert len(model.models_) == len(model.config_.fit_levels)
    assert model.n_examples_ > 100 * len(LOCS)  # one pooled training set over every location


def test_ilinet_extra_history(shared_data, targets):
    ili = ilinet_pseudo_counts(shared_data)
    assert ili["location"].nunique() == 11  # national + 10 HHS regions
    assert (ili["value"] >= 0).all() and (ili["value"] % 1 == 0).all()
    assert ili["date"].dt.dayofweek.eq(5).all()  # week-ending Saturdays, like the NHSN targets
    hist = prepare_targets(targets[targets["date"] < REF])
    plain = tiny_gbm().fit(hist)
    more = GlobalQuantileGBM(tiny_gbm().config, extra=ili).fit(hist)
    assert more.n_examples_ > plain.n_examples_ + 20_000
    # extra rows dated after the forecast's own last week are never used
    late = ili.assign(date=ili["date"] + pd.Timedelta(weeks=20 * 52))
    assert GlobalQuantileGBM(tiny_gbm().config, extra=late).fit(hist).n_examples_ == plain.n_examples_


def test_bad_input(targets):
    neg = targets.copy()
    neg.loc[3, "value"] = -4
    with pytest.raises(SmartcareError, match="negative"):
        forecast(neg, REF)
    frac = targets.copy()
    frac.loc[3, "value"] = 2.5
    with pytest.raises(SmartcareError, match="non-integer"):
        forecast(frac, REF)
    with pytest.raises(SmartcareError, match="unknown forecast model"):
        forecast(targets, REF, "prophet")
    with pytest.raises(SmartcareError, match="before the reference date"):
        forecast(targets, "2020-01-04")
    with pytest.raises(SmartcareError, match="weekday"):
        forecast(targets, "2024-01-03")
    with pytest.raises(SmartcareError, match="too short"):
        forecast(targets[targets["date"] < "2022-03-05"], "2022-03-05", tiny_gbm())
    with pytest.raises(SmartcareError, match="nsim"):
        BaselineConfig(nsim=1)
    assert set(MODELS) == {"flusight-baseline", "gbm-global", "gbm-global-ili", "gbm-blend"}


def test_cli_writes_forecasts_and_plot(targets, tmp_path):
    src = tmp_path / "targets.csv"
    targets.assign(date=targets["date"].dt.strftime("%Y-%m-%d")).to_csv(src, index=False)
    out, png = tmp_path / "fc.csv", tmp_path / "fan.png"
    res = CliRunner().invoke(cli_app, ["forecast", "--targets", str(src), "--reference-date", REF,
                                       "--model", "flusight-baseline", "--out", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    fc = hub.read_forecasts(out)
    assert len(fc) == len(LOCS) * 4 * 23
    assert png.stat().st_size > 10_000


def test_http_forecast(targets, client):
    rows = targets.assign(date=targets["date"].dt.strftime("%Y-%m-%d"))[["date", "location", "value"]]
    body = {"targets": rows.to_dict(orient="records"), "reference_date": REF, "model": "flusight-baseline"}
    r = client.post("/api/publichealth/forecast", json=body)
    assert r.status_code == 200, r.text
    assert len(r.json()["forecasts"]) == len(LOCS) * 4 * 23
    bad = client.post("/api/publichealth/forecast", json={**body, "model": "nope"})
    assert bad.status_code == 422
    assert "unknown forecast model" in bad.text


def test_backtest_season_scores_and_compares(shared_data):
    from smartcare.publichealth.forecast.backtest import backtest_season, compare_season

    scores = backtest_season("2024-25", "flusight-baseline", root=shared_data, dates=["2024-12-14"],
                             locations=["06", "36", "US"])
    assert len(scores) == 3 * 4
    assert (scores["model_id"] == "flusight-baseline").all()
    assert scores["wis"].notna().all() and (scores["wis"] >= 0).all()
    table = compare_season("2024-25", scores, root=shared_data)
    assert set(table["model_id"]) == {"flusight-baseline", "FluSight-ensemble", "FluSight-baseline"}
    assert (table["n_common"] == 2 * 4).all()  # states only: US left out
    base = table.set_index("model_id").loc["FluSight-baseline"]
    assert base["rel_wis"] == 1.0 and base["rel_wis_log1p"] == 1.0


@pytest.mark.slow  # starting a local Ray cluster takes ~20-30 s on 2 cores
def test_backtest_on_ray_equals_local(targets):
    import ray  # the `dist` extra, installed by `make test`

    from smartcare.publichealth.forecast.backtest import backtest

    dates = ["2024-11-30", "2024-12-14"]
    local = backtest(targets, dates, "flusight-baseline", locations=["06", "36"])
    try:
        remote = backtest(targets, dates, "flusight-baseline", locations=["06", "36"], use_ray=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert len(local) == 2 * 2 * 4 * 23
    pd.testing.assert_frame_equal(remote, local)
