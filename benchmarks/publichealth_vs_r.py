"""smartcare.publichealth against R surveillance 1.20.3 and EpiEstim 2.2-4, same inputs, one run.

- EARS C1-C3 and farringtonFlexible (default and Noufaily) over the 300 simulated series (weeks 573-624);
- estimate_R on every EpiEstim dataset with an SI given by parameters or as a distribution.
Reports agreement (threshold relative difference, identical alarms, Rt differences) and speed ratios.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import ensure_apt, markdown_table
from smartcare.core.data import dataset_path
from smartcare.publichealth.aberration.ears import EarsConfig, ears_c
from smartcare.publichealth.aberration.evaluation import detect_simulated, summarize_detection
from smartcare.publichealth.aberration.farrington import FarringtonConfig, farrington_flexible_many
from smartcare.publichealth.rt import estimate_r, make_incidence
from smartcare.publichealth.series import CountSeries

NAME = "publichealth_vs_r"
TITLE = "Public health: smartcare vs R surveillance / EpiEstim (same inputs, one run)"
R_SCRIPT = Path(__file__).parent / "r" / "publichealth_peer.R"
WEEKS = np.arange(572, 624)  # 0-based positions of weeks 573..624


def _run_r(root: Path, out: Path) -> pd.DataFrame:
    ensure_apt(["r-base-core", "r-cran-surveillance", "r-cran-epiestim"], ["Rscript"])
    subprocess.run(["Rscript", str(R_SCRIPT), str(root), str(out)], check=True,
                   env={**os.environ, "TZ": "UTC"}, capture_output=True, text=True)
    return pd.read_csv(out / "timings.csv")


def _series(root: Path) -> tuple[pd.DataFrame, list[tuple[str, int]], list[CountSeries]]:
    table = pd.read_csv(root / "simulated_outbreaks" / "noufaily_style_series_dev_seed20240601.csv")
    keys, objs = [], []
    for (scen, rep), g in table.sort_values(["scenario", "rep", "t"]).groupby(["scenario", "rep"]):
        keys.append((scen, rep))
        dates = pd.to_datetime(g["date"]).to_numpy().astype("datetime64[D]")
        objs.append(CountSeries(g["observed"].to_numpy(), dates, location=f"{scen}-{rep}"))
    return table, keys, objs


def _ours_detectors(keys, objs) -> tuple[pd.DataFrame, dict[str, float]]:
    frames, secs = [], {}

    def collect(method, results):
        for (scen, rep), r in zip(keys, results, strict=True):
            frames.append(pd.DataFrame({"scenario": scen, "rep": rep, "t": WEEKS + 1, "method": method,
                                        "upperbound_ours": np.asarray(r.upperbound, float),
                                        "alarm_ours": np.asarray(r.alarm, float)}))

    t0 = time.perf_counter()
    ears = {m: [ears_c(s, EarsConfig(method=m), WEEKS) for s in objs] for m in ("C1", "C2", "C3")}
    secs["ears"] = time.perf_counter() - t0
    for m, res in ears.items():
        collect(f"ears-{m.lower()}", res)
    for method, cfg in (("farrington", FarringtonConfig()), ("farrington-noufaily", FarringtonConfig.noufaily())):
        t0 = time.perf_counter()
        res = farrington_flexible_many(objs, [WEEKS] * len(objs), cfg)
        secs[method] = time.perf_counter() - t0
        collect(method, res)
    return pd.concat(frames, ignore_index=True), secs


def _agreement(r: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    m = r.merge(ours, on=["scenario", "rep", "t", "method"], how="outer", validate="one_to_one")
    rows = []
    for method, g in m.groupby("method", sort=False):
        ub_r, ub_o = g["upperbound"].to_numpy(float), g["upperbound_ours"].to_numpy(float)
        both = ~np.isnan(ub_r) & ~np.isnan(ub_o)
        rel = np.abs(ub_o[both] - ub_r[both]) / np.maximum(np.abs(ub_r[both]), 1e-12)
        al_r, al_o = g["alarm"].to_numpy(float), g["alarm_ours"].to_numpy(float)
        same = (al_r == al_o) | (np.isnan(al_r) & np.isnan(al_o))
        rows.append({"method": method, "weeks": len(g), "nan_mismatch": int((np.isnan(ub_r) != np.isnan(ub_o)).sum()),
                     "max_rel_diff_upperbound": float(rel.max()) if rel.size else float("nan"),
                     "within_1e-6_or_both_nan": int((rel <= 1e-6).sum() + (np.isnan(ub_r) & np.isnan(ub_o)).sum()),
                     "alarms_identical": int(same.sum())})
    return pd.DataFrame(rows)


def _rt_runs(root: Path):
    ee = root / "epiestim_datasets"
    inc = {n: pd.read_csv(ee / f"{n}_incidence.csv")["I"].to_numpy() for n in
           ("Flu1918", "Flu2009", "SARS2003", "Measles1861", "Smallpox1972")}
    sid = {n: pd.read_csv(ee / f"{n}_si_distr.csv")["w"].to_numpy() for n in inc}
    mers = pd.read_csv(ee / "mers_2014_15_incidence.csv")
    mers_si = pd.read_csv(ee / "mers_2014_15_si_params.csv").iloc[0]
    mers_inc = make_incidence(None, local=mers["local"].to_numpy(), imported=mers["imported"].to_numpy())
    return [
        ("Flu1918_non_parametric_si", inc["Flu1918"], dict(method="non_parametric_si", si_distr=sid["Flu1918"])),
        ("Flu2009_parametric_si", inc["Flu2009"], dict(method="parametric_si", mean_si=2.6, std_si=1.5)),
        ("Flu2009_non_parametric_si", inc["Flu2009"], dict(method="non_parametric_si", si_distr=sid["Flu2009"])),
        ("SARS2003_non_parametric_si", inc["SARS2003"], dict(method="non_parametric_si", si_distr=sid["SARS2003"])),
        ("Measles1861_parametric_si", inc["Measles1861"], dict(method="parametric_si", mean_si=14.9, std_si=3.9)),
        ("Measles1861_non_parametric_si", inc["Measles1861"],
         dict(method="non_parametric_si", si_distr=sid["Measles1861"])),
        ("Smallpox1972_non_parametric_si", inc["Smallpox1972"],
         dict(method="non_parametric_si", si_distr=sid["Smallpox1972"])),
        ("MERS2014_15_local_imported", mers_inc,
         dict(method="parametric_si", mean_si=float(mers_si["mean_si"]), std_si=float(mers_si["std_si"]))),
    ]


def _ours_rt(root: Path, reps: int = 20) -> tuple[pd.DataFrame, float]:
    import warnings

    frames, total = [], 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, incid, kw in _rt_runs(root):
            t0 = time.perf_counter()
            for _ in range(reps):
                est = estimate_r(incid, **kw)
            total += (time.perf_counter() - t0) / reps
            frames.append(est.assign(run=name))
    return pd.concat(frames, ignore_index=True), total


def _rt_agreement(r: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    cols = {"Mean.R.": "mean", "Std.R.": "std", "Quantile.0.025.R.": "q0.025", "Median.R.": "q0.5",
            "Quantile.0.975.R.": "q0.975"}
    rows = []
    for run, g in r.groupby("run", sort=False):
        o = ours[ours["run"] == run].reset_index(drop=True)
        worst, n_ok = 0.0, 0
        for i in range(len(g)):
            ok = True
            for rc, oc in cols.items():
                a, b = float(g[rc].iloc[i]), float(o[_ours_col(o, oc)].iloc[i])
                if np.isnan(a) and np.isnan(b):
                    continue
                d = abs(a - b)
                worst = max(worst, d)
                ok &= d <= 1e-6
            n_ok += ok
        rows.append({"run": run, "windows": len(g), "windows_within_1e-6": n_ok, "max_abs_diff": worst,
                     "same_length": len(g) == len(o)})
    return pd.DataFrame(rows)


def _ours_col(df: pd.DataFrame, key: str) -> str:
    candidates = {"mean": ["mean", "Mean(R)"], "std": ["std", "sd", "Std(R)"],
                  "q0.025": ["q0.025", "Quantile.0.025(R)", "quantile_0.025"],
                  "q0.5": ["q0.5", "median", "Median(R)", "quantile_0.5"],
                  "q0.975": ["q0.975", "Quantile.0.975(R)", "quantile_0.975"]}[key]
    for c in candidates:
        if c in df.columns:
            return c
    raise KeyError(f"no column for {key} in {list(df.columns)}")


def run() -> dict:
    root = dataset_path("publichealth")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r_times = _run_r(root, Path(tmp))
        r_wall = time.perf_counter() - t0
        r_det = pd.read_csv(Path(tmp) / "sim_detectors.csv")
        r_rt = pd.read_csv(Path(tmp) / "rt.csv")
    table, keys, objs = _series(root)
    ours_det, secs = _ours_detectors(keys, objs)
    agree = _agreement(r_det, ours_det)
    ours_rt, rt_secs = _ours_rt(root)
    rt_agree = _rt_agreement(r_rt, ours_rt)
    summary = summarize_detection(detect_simulated(table))
    ref = pd.read_csv(root / "simulated_outbreaks" / "ref_detection_summary_dev_seed20240601.csv")
    det = summary.merge(ref, on=["scenario", "method"], suffixes=("", "_R"))
    rt_ = dict(zip(r_times["call"], r_times["seconds"], strict=True))
    r_farr = rt_["farringtonFlexible default, 300 series"]
    r_nouf = rt_["farringtonFlexible Noufaily, 300 series"]
    r_ears = rt_["earsC C1-C3, 300 series"]
    r_all = r_farr + r_nouf + r_ears
    ours_all = secs["ears"] + secs["farrington"] + secs["farrington-noufaily"]
    r_est = rt_["estimate_R, all datasets (mean of 20 repetitions)"]
    return {
        "metrics": {"farrington_default_s": secs["farrington"], "farrington_noufaily_s": secs["farrington-noufaily"],
                    "ears_c1_c3_s": secs["ears"], "five_detectors_s": ours_all, "estimate_r_all_s": rt_secs,
                    "detector_weeks_alarms_identical": int(agree["alarms_identical"].sum()),
                    "detector_weeks": int(agree["weeks"].sum()),
                    "rt_windows_within_1e-6": int(rt_agree["windows_within_1e-6"].sum()),
                    "rt_windows": int(rt_agree["windows"].sum())},
        "peer": {"R_farrington_default_s": r_farr, "R_farrington_noufaily_s": r_nouf, "R_ears_c1_c3_s": r_ears,
                 "R_five_detectors_s": r_all, "R_estimate_r_all_s": r_est, "R_script_wall_s": r_wall},
        "ratios": {"speedup_farrington_default": r_farr / secs["farrington"],
                   "speedup_farrington_noufaily": r_nouf / secs["farrington-noufaily"],
                   "speedup_five_detectors": r_all / ours_all, "speedup_estimate_r": r_est / rt_secs},
        "tables": {"detector agreement with R (300 series x 52 weeks)": markdown_table(agree),
                   "estimate_R agreement with R": markdown_table(rt_agree),
                   "detection on simulated outbreaks (dev seed), ours vs R reference": markdown_table(
                       det[["scenario", "method", "fpr_weeks", "fpr_weeks_R", "pod_eval_outbreak",
                            "pod_eval_outbreak_R"]])},
        "notes": "Speed ratios are R seconds / smartcare seconds on the same machine in the same run.",
    }
