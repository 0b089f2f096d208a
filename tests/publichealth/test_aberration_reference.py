"""Acceptance: every row of R surveillance 1.20.3's reference outputs (earsC, farringtonFlexible, cusum).

Thresholds agree within 1e-6 relative (NA where R has NA) and alarms are identical, on every row.
The rows matched per file are printed (run with ``-s``) and recorded in ``MATCHED``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartcare.publichealth.aberration.cusum import CusumConfig, cusum
from smartcare.publichealth.aberration.ears import EarsConfig, ears_c
from smartcare.publichealth.aberration.farrington import FarringtonConfig, farrington_flexible_many
from smartcare.publichealth.series import CountSeries

SERIES = ("salmonella.agona", "campyDE", "ha.sts.total")
ROWS = {  # rows in each reference file (from the files' own row counts)
    "ref_earsC_C1_C2_C3.csv": 3291,
    "ref_farringtonFlexible_default.csv": 335,
    "ref_farringtonFlexible_noufaily_last52.csv": 156,
    "ref_cusum_last104.csv": 312,
}
MATCHED: dict[str, int] = {}


@pytest.fixture(scope="module")
def ref_dir(shared_data):
    return shared_data / "publichealth" / "r_reference_outputs"


@pytest.fixture(scope="module")
def inputs(ref_dir) -> dict[str, CountSeries]:
    """The three input series as R saw them: campyDE with dates, the other two as plain week indices."""
    out = {}
    for name in SERIES:
        d = pd.read_csv(ref_dir / f"input_series_{name}.csv")
        dates = d["date"].to_numpy().astype("datetime64[D]") if d["date"].notna().all() else None
        out[name] = CountSeries(d["observed"].to_numpy(), dates, location=name)
    return out


def run(method: str, s: CountSeries, rng: np.ndarray):
    if method.startswith("earsC_"):
        return ears_c(s, EarsConfig(method=method.split("_")[1]), None)  # R's default range
    if method == "farringtonFlexible_default":
        return farrington_flexible_many([s], [None], FarringtonConfig())[0]  # R's default range
    if method == "farringtonFlexible_noufaily":
        return farrington_flexible_many([s], [rng], FarringtonConfig.noufaily())[0]
    if method == "cusum_standard":
        return cusum(s, CusumConfig(), rng)
    raise AssertionError(method)


def rows_matched(ref: pd.DataFrame, inputs) -> int:
    matched = 0
    for (name, method), g in ref.groupby(["series", "method"], sort=False):
        rng = g["t_index"].to_numpy() - 1
        res = run(method, inputs[name], rng)
        np.testing.assert_array_equal(res.index, rng)
        np.testing.assert_array_equal(res.observed, g["observed"].to_numpy())
        r_up, r_al = g["upperbound"].to_numpy(float), g["alarm"].to_numpy(float)
        same_na = np.isnan(r_up) == np.isnan(res.upperbound)
        with np.errstate(invalid="ignore", divide="ignore"):
            close = np.abs(res.upperbound - r_up) <= 1e-6 * np.abs(r_up)
        ok_up = same_na & (np.isnan(r_up) | close)
        ok_al = (r_al == res.alarm) | (np.isnan(r_al) & np.isnan(res.alarm))
        matched += int((ok_up & ok_al).sum())
    return matched


@pytest.mark.parametrize("file", list(ROWS))
def test_every_reference_row_matches(file, ref_dir, inputs):
    ref = pd.read_csv(ref_dir / file)
    assert len(ref) == ROWS[file]
    matched = rows_matched(ref, inputs)
    MATCHED[file] = matched
    print(f"\n{file}: {matched}/{len(ref)} rows matched (threshold rel. tol 1e-6, identical alarms)")
    assert matched == len(ref)


def test_reference_alarm_counts(ref_dir, inputs):
    """The MANIFEST's key numbers: farringtonFlexible default 3/24/7 alarms, Noufaily 7/8/10, CUSUM 18/84/7."""
    counts = pd.read_csv(ref_dir / "ref_alarm_counts.csv")
    for name in SERIES:
        s = inputs[name]
        last52 = np.arange(len(s) - 52, len(s))
        got = {
            "farringtonFlexible (default": np.nansum(
                farrington_flexible_many([s], [None], FarringtonConfig())[0].alarm),
            "farringtonFlexible Noufaily": np.nansum(
                farrington_flexible_many([s], [last52], FarringtonConfig.noufaily())[0].alarm),
            "cusum": np.nansum(cusum(s, CusumConfig(), np.arange(len(s) - 104, len(s))).alarm),
        }
        for prefix, n in got.items():
            row = counts[(counts["series"] == name) & counts["method"].str.startswith(prefix)]
            assert int(row["n_alarms"].iloc[0]) == int(n), (name, prefix)


def test_c3_uses_alpha_0025_by_default():
    """R: earsC with control=list(method="C3") and no alpha uses 0.025 for C3, 0.001 for C1/C2."""
    assert EarsConfig(method="C3").z_alpha == pytest.approx(1.959963984540054)
    assert EarsConfig(method="C1").z_alpha == pytest.approx(3.090232306167813)
