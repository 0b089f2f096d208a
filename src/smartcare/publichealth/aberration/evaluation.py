"""Detection performance on labelled series: false-alarm rate, sensitivity and probability of detection.

Definitions follow the simulated_outbreaks reference (Noufaily et al. 2013 style): the false-alarm rate is
the alarm rate over weeks without outbreak cases, the sensitivity the alarm rate over weeks with outbreak
cases, and the probability of detection (POD) the share of series whose evaluation-window outbreak gets at
least one alarm. NA alarms (EARS C3 with a zero reference sd) are left out of the rates, as R's
``mean(..., na.rm = TRUE)``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.core.data import dataset_path
from smartcare.publichealth.aberration.ears import EarsConfig, ears_c
from smartcare.publichealth.aberration.farrington import FarringtonConfig, farrington_flexible_many
from smartcare.publichealth.series import CountSeries

SIM_TAG = "dev_seed20240601"
EVAL_WEEKS = np.arange(572, 624)  # 0-based positions of weeks 573..624 (R's range)
METHODS = ("earsC_C1", "earsC_C2", "earsC_C3", "farringtonFlexible_default", "farringtonFlexible_noufaily")


def false_alarm_rate(alarm: np.ndarray, label: np.ndarray) -> float:
    """Alarm rate over weeks with label 0, NA alarms ignored; (N,) arrays in, float out."""
    a = np.asarray(alarm, dtype=float)[np.asarray(label) == 0]
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def sensitivity(alarm: np.ndarray, label: np.ndarray) -> float:
    """Alarm rate over weeks with label 1, NA alarms ignored."""
    a = np.asarray(alarm, dtype=float)[np.asarray(label) == 1]
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def probability_of_detection(alarm: np.ndarray, outbreak: np.ndarray, group: np.ndarray) -> float:
    """Share of groups (series) with >= 1 alarm during weeks where ``outbreak`` is true."""
    df = pd.DataFrame({"a": np.nan_to_num(np.asarray(alarm, dtype=float)) == 1, "o": outbreak, "g": group})
    per_group = df[df["o"]].groupby("g")["a"].any()
    return float(per_group.mean()) if len(per_group) else float("nan")


def detect_simulated(
    series: pd.DataFrame, weeks: np.ndarray = EVAL_WEEKS, timings: dict[str, float] | None = None
) -> pd.DataFrame:
    """Alarms of the five reference detectors on every (scenario, rep) series over ``weeks``.

    Args:
        series: rows ``scenario, rep, t, date, observed, label, outbreak_id`` (the simulated file).
        weeks: 0-based positions judged in every series.
        timings: if given, filled with wall-clock seconds per method (all series together).
    Returns:
        One row per series and judged week: scenario, rep, t, label, outbreak_id and one 0/1/NaN alarm
        column per method in :data:`METHODS` (the layout of R's ``ref_alarms_eval_window_*.csv``).
    """
    keys, objs = [], []
    ordered = series.sort_values(["scenario", "rep", "t"])
    for (scen, rep), g in ordered.groupby(["scenario", "rep"], sort=True):
        keys.append((scen, rep, g))
        dates = pd.to_datetime(g["date"]).to_numpy().astype("datetime64[D]")
        objs.append(CountSeries(g["observed"].to_numpy(), dates, location=f"{scen}-{rep}"))
    cols: dict[str, list[np.ndarray]] = {}
    spent = {} if timings is None else timings
    for m in ("C1", "C2", "C3"):
        start = time.perf_counter()
        cols[f"earsC_{m}"] = [ears_c(s, EarsConfig(method=m), weeks).alarm for s in objs]
        spent[f"earsC_{m}"] = time.perf_counter() - start
    for name, cfg in (("farringtonFlexible_default", FarringtonConfig()),
                      ("farringtonFlexible_noufaily", FarringtonConfig.noufaily())):
        start = time.perf_counter()
        cols[name] = [r.alarm for r in farrington_flexible_many(objs, [weeks] * len(objs), cfg)]
        spent[name] = time.perf_counter() - start
    frames = []
    for i, (scen, rep, g) in enumerate(keys):
        sub = g.iloc[weeks]
        frame = pd.DataFrame({"scenario": scen, "rep": rep, "t": sub["t"].to_numpy(),
                              "label": sub["label"].to_numpy(), "outbreak_id": sub["outbreak_id"].to_numpy()})
        for m in METHODS:
            frame[m] = cols[m][i]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize_detection(alarms: pd.DataFrame, eval_outbreak_id: int = 5) -> pd.DataFrame:
    """Per scenario x method: n_series, fpr_weeks, sensitivity_weeks, pod_eval_outbreak."""
    rows = []
    for scen, a in alarms.groupby("scenario", sort=True):
        for m in METHODS:
            rows.append({
                "scenario": scen, "method": m, "n_series": a["rep"].nunique(),
                "fpr_weeks": false_alarm_rate(a[m], a["label"]),
                "sensitivity_weeks": sensitivity(a[m], a["label"]),
                "pod_eval_outbreak": probability_of_detection(
                    a[m], a["outbreak_id"] == eval_outbreak_id, a["rep"]),
            })
    return pd.DataFrame(rows)


def evaluate_simulated(
    data_root: str | Path | None = None, timings: dict[str, float] | None = None
) -> pd.DataFrame:
    """Our detection table on the dev-seed simulated outbreaks beside R's reference summary.

    Args:
        data_root: shared data root (None: ``SMARTCARE_DATA``).
        timings: if given, filled with seconds per detector over the 300 series (see detect_simulated).
    Returns:
        Columns scenario, method, n_series, fpr_weeks, sensitivity_weeks, pod_eval_outbreak, the R values
        as ``r_fpr_weeks``, ``r_sensitivity_weeks``, ``r_pod_eval_outbreak``, and ``alarm_agreement``
        (share of judged weeks where our alarm equals R's, NA counted equal to NA).
    Raises:
        DatasetMissingError: the simulated_outbreaks folder is absent.
    """
    folder = dataset_path("publichealth/simulated_outbreaks", data_root)
    series = pd.read_csv(folder / f"noufaily_style_series_{SIM_TAG}.csv")
    ours = detect_simulated(series, timings=timings)
    table = summarize_detection(ours)
    ref = pd.read_csv(folder / f"ref_detection_summary_{SIM_TAG}.csv")
    ref = ref.rename(columns={c: f"r_{c}" for c in ("fpr_weeks", "sensitivity_weeks", "pod_eval_outbreak")})
    table = table.merge(ref.drop(columns="n_series"), on=["scenario", "method"], how="left")
    r_alarms = pd.read_csv(folder / f"ref_alarms_eval_window_{SIM_TAG}.csv")
    joined = ours.merge(r_alarms, on=["scenario", "rep", "t"], suffixes=("", "_r"))
    agree = []
    for _, row in table.iterrows():
        j = joined[joined["scenario"] == row["scenario"]]
        a, b = j[row["method"]].to_numpy(float), j[row["method"] + "_r"].to_numpy(float)
        agree.append(float(np.mean((a == b) | (np.isnan(a) & np.isnan(b)))))
    table["alarm_agreement"] = agree
    return table
