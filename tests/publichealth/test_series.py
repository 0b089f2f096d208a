"""Count series: validation errors name the problem; readers split locations; epiweeks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartcare.core.errors import SmartcareError
from smartcare.publichealth.series import CountSeries, SeriesError, read_series, series_from_frame


def weekly(n=10, start="2024-01-01"):
    return pd.date_range(start, periods=n, freq="7D").to_numpy().astype("datetime64[D]")


def test_valid_weekly_series_with_population():
    s = CountSeries(np.arange(10), weekly(), population=np.full(10, 1000.0), location="A")
    assert len(s) == 10 and s.freq == 52 and s.observed.dtype == np.int64
    assert s.day_numbers[1] - s.day_numbers[0] == 7
    np.testing.assert_array_equal(s.population_or_ones(), 1000.0)
    assert s.index_of("2024-01-15") == 2


def test_epiweeks_are_mmwr_weeks():
    s = CountSeries([1, 2, 3], weekly(3, start="2023-12-31"))  # MMWR week 1 of 2024 starts on 31 Dec 2023
    wk = s.epiweeks()
    assert list(wk["year"]) == [2024, 2024, 2024] and list(wk["week"]) == [1, 2, 3]


@pytest.mark.parametrize(
    "observed, match",
    [
        ([1, -1, 2], "negative count -1 at row 2"),
        ([1, 2.5, 2], "non-integer count 2.5 at row 2"),
        ([1, np.nan, 2], "missing/NaN value.*row 2"),
        ([], "non-empty"),
    ],
)
def test_bad_counts_are_named(observed, match):
    with pytest.raises(SeriesError, match=match):
        CountSeries(np.array(observed, dtype=float))


def test_bad_counts_are_smartcare_errors():
    with pytest.raises(SmartcareError):
        CountSeries([1, -1])


@pytest.mark.parametrize(
    "dates, match",
    [
        (["2024-01-01", "2024-01-01", "2024-01-08"], "duplicated date 2024-01-01"),
        (["2024-01-08", "2024-01-01", "2024-01-15"], "not sorted"),
        (["2024-01-01", "2024-01-08", "2024-01-22"], "not regularly spaced"),
    ],
)
def test_bad_dates_are_named(dates, match):
    with pytest.raises(SeriesError, match=match):
        CountSeries([1, 2, 3], np.array(dates, dtype="datetime64[D]"))


def test_history_too_short():
    s = CountSeries(np.ones(5, dtype=int), weekly(5))
    with pytest.raises(SeriesError, match="history too short for farringtonFlexible: needs at least 10"):
        s.require_history(10, "farringtonFlexible")


def test_frame_splits_locations_and_infers_daily(tmp_path):
    df = pd.DataFrame({
        "date": list(pd.date_range("2024-01-01", periods=4).strftime("%Y-%m-%d")) * 2,
        "observed": [1, 2, 3, 4, 5, 6, 7, 8],
        "location": ["A"] * 4 + ["B"] * 4,
        "population": [100.0] * 8,
    })
    path = tmp_path / "s.parquet"
    df.to_parquet(path)
    series = read_series(path)
    assert [s.location for s in series] == ["A", "B"]
    assert series[1].freq == 365 and series[1].observed.tolist() == [5, 6, 7, 8]
    df.to_csv(tmp_path / "s.csv", index=False)
    assert read_series(tmp_path / "s.csv")[0].population.tolist() == [100.0] * 4


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame({"date": ["2024-01-01"], "count": [1]}), "lacks column.*observed"),
        (pd.DataFrame({"date": ["not a date"], "observed": [1]}), "is not a date"),
        (pd.DataFrame({"date": ["2024-01-01"], "observed": ["x"]}), "not a number at row 1"),
        (pd.DataFrame({"date": ["2024-01-01", "2024-01-01"], "observed": [1, 2], "location": "Z"}),
         "location 'Z': duplicated date"),
    ],
)
def test_frame_errors(frame, match):
    with pytest.raises(SeriesError, match=match):
        series_from_frame(frame)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SeriesError, match="does not exist"):
        read_series(tmp_path / "nope.csv")


def test_epiweek_columns_become_dates():
    df = pd.DataFrame({"year": [2024, 2024, 2024], "week": [1, 2, 3], "observed": [4, 5, 6]})
    (s,) = series_from_frame(df)
    assert str(s.dates[0]) == "2023-12-31" and s.freq == 52
    with pytest.raises(SeriesError, match="not an MMWR epiweek"):
        series_from_frame(pd.DataFrame({"year": [2024], "week": [60], "observed": [1]}))
