"""Hubverse forecast tables and FluSight target data: read, convert, validate, write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub


def _forecast(ref="2024-11-23", location="01", horizons=(0, 1), model=None, scale=1.0) -> pd.DataFrame:
    rows = []
    for h in horizons:
        end = pd.Timestamp(ref) + pd.Timedelta(weeks=h)
        for q in hub.QUANTILES:
            rows.append({"reference_date": ref, "target": hub.DEFAULT_TARGET, "horizon": h,
                         "target_end_date": end.strftime("%Y-%m-%d"), "location": location,
                         "output_type": "quantile", "output_type_id": q, "value": scale * (10 + 40 * q + h)})
    df = pd.DataFrame(rows)
    if model is not None:
        df.insert(0, "model_id", model)
    return df


def test_quantile_levels_are_flusight():
    assert len(hub.QUANTILES) == 23 and hub.QUANTILES[11] == 0.5
    assert hub.QUANTILES[:3] == (0.01, 0.025, 0.05) and hub.QUANTILES[-3:] == (0.95, 0.975, 0.99)
    np.testing.assert_allclose(np.add(hub.QUANTILES, hub.QUANTILES[::-1]), 1.0)


def test_write_read_round_trip(tmp_path):
    df = pd.concat([_forecast(model="m"), _forecast(location="US", model="m")])
    path = hub.write_forecasts(df, tmp_path / "fc.csv")
    back = hub.read_forecasts(path)
    assert list(back.columns) == ["model_id", *hub.HUB_COLUMNS]
    assert back["location"].tolist()[0] == "01"  # FIPS codes stay text
    np.testing.assert_allclose(back["value"], df["value"])
    assert (back["target_end_date"] - back["reference_date"]).dt.days.max() == 7
    pq = hub.write_forecasts(df, tmp_path / "fc.parquet")
    assert hub.read_forecasts(pq).equals(back)


def test_shipped_wide_file_reads_as_long(shared_data):
    path = shared_data / "publichealth" / "flusight_hosp" / "forecasts_FluSight-ensemble_baseline_2024-25.csv"
    wide = pd.read_csv(path, dtype={"location": str})
    long = hub.read_forecasts(path)
    assert len(long) == 23 * len(wide) == 23 * 11448
    assert set(long["model_id"]) == {"FluSight-ensemble", "FluSight-baseline"}
    keys, values = hub.quantile_matrix(long)
    assert values.shape == (11448, 23)
    first = wide.iloc[0]
    row = ((keys["model_id"] == first["model"]) & (keys["location"] == first["location"])
           & (keys["reference_date"] == pd.Timestamp(first["reference_date"]))
           & (keys["horizon"] == first["horizon"]))
    expected = first[[f"q{q:g}" for q in hub.QUANTILES]].astype(float)
    np.testing.assert_allclose(values[row.to_numpy()][0], expected)


def test_missing_quantile_is_named():
    df = _forecast()
    df = df[~((df["horizon"] == 1) & (df["output_type_id"] == 0.975))]
    with pytest.raises(SmartcareError, match="lacks 1 of the 23 quantiles.*0.975"):
        hub.validate_forecasts(df)


def test_non_monotone_quantiles_are_named():
    df = _forecast()
    df.loc[(df["horizon"] == 0) & (df["output_type_id"] == 0.6), "value"] = 1.0
    with pytest.raises(SmartcareError, match="decrease: q0.55=.* > q0.6=1"):
        hub.validate_forecasts(df)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.drop(columns=["target"]), "lacks hubverse columns \\['target'\\]"),
        (lambda d: d.assign(output_type="mean"), "only output_type 'quantile'"),
        (lambda d: d.assign(output_type_id=d["output_type_id"].where(d.index != 3, 0.33)), "not one of"),
        (lambda d: d.assign(value=d["value"].where(d.index != 5, np.nan)), "'value' must be a number"),
        (lambda d: d.assign(target_end_date="2024-12-25"), "7\\*horizon"),
        (lambda d: d.assign(reference_date="not a date"), "not dates"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "duplicated quantile"),
        (lambda d: d.iloc[:0], "empty"),
    ],
)
def test_bad_forecast_tables(change, match):
    with pytest.raises(SmartcareError, match=match):
        hub.validate_forecasts(change(_forecast()))


def test_write_refuses_bad_table(tmp_path):
    df = _forecast()
    df.loc[df.index[0], "value"] = 1e9
    with pytest.raises(SmartcareError, match="decrease"):
        hub.write_forecasts(df, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_targets_validation(tmp_path):
    t = pd.DataFrame({"date": ["2024-11-23", "2024-11-30", "2024-12-07"], "location": ["01", "01", "01"],
                      "value": [5, None, 7]})
    out = hub.validate_targets(t)
    assert len(out) == 2 and out["location"].iloc[0] == "01"  # missing values are dropped
    with pytest.raises(SmartcareError, match="negative target value"):
        hub.validate_targets(t.assign(value=[5, -1, 7]))
    with pytest.raises(SmartcareError, match="duplicated target row"):
        hub.validate_targets(t.assign(date="2024-11-23"))
    with pytest.raises(SmartcareError, match="lacks columns \\['value'\\]"):
        hub.validate_targets(t.drop(columns="value"))
    with pytest.raises(SmartcareError, match="file not found"):
        hub.read_targets(tmp_path / "nope.csv")
