"""Forecasts of weekly flu hospital admissions against the FluSight-ensemble and FluSight-baseline.

Rolling-origin backtest (a forecast for reference date D uses only target rows dated before D) of our
models over every hub round of 2024-25, scored with WIS (K = 11), coverage and relative WIS against
the shipped FluSight-baseline on the forecasts every model made (states + DC + PR, horizons 0-3).
The model choices were made on 2023-24; 2024-25 is the evaluation season.
"""

from __future__ import annotations

import time

import pandas as pd

from benchmarks.harness import markdown_table
from smartcare.publichealth.forecast.backtest import backtest_season, compare_season

NAME = "publichealth_forecast"
TITLE = "Public health: flu hospitalisation forecasts vs FluSight-ensemble (2024-25, rolling origin)"
SEASON = "2024-25"
MODELS = ("gbm-blend", "flusight-baseline")


def run() -> dict:
    scores, secs = [], {}
    for model in MODELS:
        t0 = time.perf_counter()
        scores.append(backtest_season(SEASON, model))
        secs[model] = time.perf_counter() - t0
    table = compare_season(SEASON, pd.concat(scores, ignore_index=True))
    rows = table.set_index("model_id")
    metrics = {f"{m}_rel_wis_natural": float(rows.loc[m, "rel_wis"]) for m in MODELS}
    metrics.update({f"{m}_rel_wis_log1p": float(rows.loc[m, "rel_wis_log1p"]) for m in MODELS})
    metrics.update({f"{m}_backtest_s": secs[m] for m in MODELS})
    peer = {"FluSight-ensemble_rel_wis_natural": float(rows.loc["FluSight-ensemble", "rel_wis"]),
            "FluSight-ensemble_rel_wis_log1p": float(rows.loc["FluSight-ensemble", "rel_wis_log1p"])}
    ratios = {"gbm-blend_vs_ensemble_natural": metrics["gbm-blend_rel_wis_natural"]
              / peer["FluSight-ensemble_rel_wis_natural"],
              "gbm-blend_vs_ensemble_log1p": metrics["gbm-blend_rel_wis_log1p"]
              / peer["FluSight-ensemble_rel_wis_log1p"]}
    return {"metrics": metrics, "peer": peer, "ratios": ratios,
            "tables": {f"{SEASON}, states + DC + PR, horizons 0-3": markdown_table(table)},
            "notes": "Relative WIS < 1 beats FluSight-baseline; ratio < 1 beats the ensemble. Training uses "
                     "the one shipped (revised) target snapshot, which flatters every backtested model a little."}
