"""Rolling-origin backtests on the FluSight seasons shipped in ``publichealth/flusight_hosp``.

For every reference date D of a season (the hub's rounds), the model is refitted on target rows dated
strictly before D (:func:`smartcare.publichealth.forecast.models.forecast`) and forecasts horizons 0-3.
Forecasts are scored against the latest (HEAD) target data with :mod:`smartcare.publichealth.scoring`.

Data revision: the shipped target table is the final, revised version; only one as-of snapshot
(2024-04-27) is shipped, so the backtest trains on revised values of the weeks before D, whereas the hub
models saw the preliminary values available at D. This favours the backtest somewhat, mostly at the peak.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from smartcare.core.data import dataset_path
from smartcare.core.distributed import ray_map
from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub, scoring
from smartcare.publichealth.forecast.data import prepare_targets
from smartcare.publichealth.forecast.models import HORIZONS, forecast

DATASET = "publichealth/flusight_hosp"
TARGET_FILE = "target_hospital_admissions_2022-02-05_to_2025-09-27.csv"
SEASONS = ("2023-24", "2024-25")
STATES = scoring.EvaluationSubset(exclude_locations=("US",))  # states + DC + PR


def _folder(root: Path | str | None) -> Path:
    return dataset_path(DATASET, root)


def load_targets(root: Path | str | None = None) -> pd.DataFrame:
    """The shipped HEAD target table, prepared for forecasting."""
    return prepare_targets(hub.read_targets(_folder(root) / TARGET_FILE))


def hub_forecasts(season: str, root: Path | str | None = None) -> pd.DataFrame:
    """Shipped FluSight-ensemble and FluSight-baseline forecasts of ``season`` (long, with model_id)."""
    if season not in SEASONS:
        raise SmartcareError(f"unknown season {season!r}; shipped seasons: {list(SEASONS)}")
    path = _folder(root) / f"forecasts_FluSight-ensemble_baseline_{season}.csv"
    return hub.read_forecasts(path)


def reference_dates(season: str, root: Path | str | None = None) -> list[pd.Timestamp]:
    """The hub's reference dates (rounds) of ``season``."""
    return sorted(pd.to_datetime(hub_forecasts(season, root)["reference_date"].unique()))


def _round(targets: pd.DataFrame, d, *, model: str | object, horizons, locations) -> pd.DataFrame:
    """One rolling-origin round: refit on rows before ``d`` and forecast."""
    est = model if isinstance(model, str) else model()
    fc = forecast(targets, d, est, horizons)
    return fc[fc["location"].isin(list(locations))] if locations is not None else fc


def backtest(targets: pd.DataFrame, dates, model: str | object, horizons=HORIZONS,
             locations=None, use_ray: bool = False) -> pd.DataFrame:
    """Forecasts for each reference date in ``dates``, each fitted only on rows before that date.

    ``model`` is a registry name or a zero-argument factory of a forecaster (refitted every round).
    ``locations`` limits the output (the model still trains on every location). ``use_ray`` runs the
    rounds as Ray tasks (``SMARTCARE_RAY_ADDRESS`` or a local cluster); the table is the same as the local
    one. Out: hubverse long table.
    """
    dates = list(dates)
    if use_ray:
        parts = ray_map(partial(_round, model=model, horizons=horizons, locations=locations), dates,
                        shared=(targets,))
    else:
        parts = [_round(targets, d, model=model, horizons=horizons, locations=locations) for d in dates]
    return pd.concat(parts, ignore_index=True)


def backtest_season(season: str, model: str = "gbm-global", root: Path | str | None = None,
                    dates=None, locations=None) -> pd.DataFrame:
    """Rolling-origin backtest of ``model`` over the hub rounds of ``season``, scored per forecast.

    Out: one row per forecast (``model_id``, key columns, ``observed, wis, wis_log1p, ae_median, cov50,
    cov95``) as :func:`smartcare.publichealth.scoring.score_forecasts`, all locations including "US".
    ``dates``/``locations`` restrict the rounds/locations (for quick runs).
    """
    targets = load_targets(root)
    dates = reference_dates(season, root) if dates is None else [pd.Timestamp(d) for d in dates]
    fc = backtest(targets, dates, model, locations=locations)
    scores = scoring.score_forecasts(fc, targets)
    scores.insert(0, "model_id", model if isinstance(model, str) else getattr(model, "name", "model"))
    return scores


def compare_season(season: str, model_scores: pd.DataFrame, root: Path | str | None = None,
                   subset: scoring.EvaluationSubset = STATES) -> pd.DataFrame:
    """One table: our model(s) beside the hub's FluSight-ensemble and FluSight-baseline.

    All models are scored on the forecasts every one of them made (same reference date, location,
    horizon) within ``subset``; relative WIS is against the shipped FluSight-baseline, on natural and
    log1p scales.
    """
    targets = load_targets(root)
    hub_scores = scoring.score_forecasts(hub_forecasts(season, root), targets)
    allscores = pd.concat([hub_scores, model_scores], ignore_index=True)
    allscores = scoring.select(allscores.dropna(subset=["wis"]), subset)
    keys = list(hub.FORECAST_KEYS)
    n_models = allscores["model_id"].nunique()
    counts = allscores.groupby(keys)["model_id"].transform("nunique")
    common = allscores[counts == n_models]
    base = common[common["model_id"] == "FluSight-baseline"]
    return scoring.summarize(common, base).sort_values("rel_wis").reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m smartcare.publichealth.forecast.backtest SEASON [MODEL ...]``: print the season table."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m smartcare.publichealth.forecast.backtest SEASON [MODEL ...]")
    season, models = args[0], args[1:] or ["gbm-blend", "gbm-global", "flusight-baseline"]
    scores = pd.concat([backtest_season(season, m) for m in models], ignore_index=True)
    table = compare_season(season, scores)
    with pd.option_context("display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
