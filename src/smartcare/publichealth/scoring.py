"""Scoring of quantile forecasts: weighted interval score (WIS), interval coverage, relative WIS.

WIS follows Bracher et al. (2021, PLoS Comput Biol 17:e1008618) as used by the CDC FluSight hub:

    WIS = 1/(K + 1/2) * ( |y - m|/2 + sum_k (alpha_k/2) * IS_alpha_k(l_k, u_k; y) ),
    IS_alpha(l, u; y) = (u - l) + (2/alpha) (l - y)+ + (2/alpha) (y - u)+,

with K = 11 central intervals from the 23 FluSight quantiles (alpha = 0.02, 0.05, 0.1, 0.2, ..., 0.9) and
m the median. This equals 2/23 times the summed pinball losses (scoringutils / hubEvals). The log1p scale
(Bosse et al. 2023, PLoS Comput Biol 19:e1011393) scores log1p(prediction) against log1p(observation).

Relative WIS (FluSight protocol, ``flusight_hosp/MANIFEST.md``): mean WIS of the model divided by mean WIS
of the baseline over the forecasts both scored (same reference date, location, horizon, target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth.hub import (
    FORECAST_KEYS,
    QUANTILES,
    quantile_matrix,
    validate_forecasts,
    validate_targets,
)

SCALES = ("natural", "log1p")
SCORE_COLUMNS = ("observed", "wis", "wis_log1p", "ae_median", "cov50", "cov95")


# ----------------------------------------------------------------------------- array operations
def _interval_pairs(levels: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Indices (lower, upper), alphas and median index for symmetric quantile ``levels``."""
    lv = np.asarray(levels, dtype=float)
    n = len(lv)
    if n % 2 != 1 or not np.allclose(lv + lv[::-1], 1.0, atol=1e-9) or not np.all(np.diff(lv) > 0):
        raise SmartcareError(f"quantile levels must be increasing, odd in number and symmetric: {levels}")
    med = n // 2
    lower = np.arange(med)
    upper = n - 1 - lower
    return lower, upper, 2.0 * lv[lower], med


def wis_array(values: np.ndarray, y: np.ndarray, levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """WIS of each forecast.

    Args:
        values: (N, Q) quantiles in increasing level order; Q odd, levels symmetric, the middle the median.
        y: (N,) observations.
        levels: the Q levels.
    Returns:
        (N,) WIS; NaN where ``y`` is NaN.
    """
    lower, upper, alpha, med = _interval_pairs(levels)
    lo = values[:, lower]  # (N, K)
    up = values[:, upper]  # (N, K)
    yy = y[:, None]  # (N, 1)
    interval = (up - lo) + (2.0 / alpha) * np.maximum(lo - yy, 0) + (2.0 / alpha) * np.maximum(yy - up, 0)
    k = len(alpha)
    total = 0.5 * np.abs(y - values[:, med]) + (alpha / 2.0 * interval).sum(axis=1)
    return total / (k + 0.5)


def coverage_array(
    values: np.ndarray, y: np.ndarray, level: float, levels: tuple[float, ...] = QUANTILES
) -> np.ndarray:
    """Whether ``y`` lies in the central ``level`` interval (bounds included): (N,) 1.0/0.0, NaN if y is."""
    lv = np.asarray(levels, dtype=float)
    lo_i = np.flatnonzero(np.isclose(lv, (1 - level) / 2, atol=1e-9))
    up_i = np.flatnonzero(np.isclose(lv, (1 + level) / 2, atol=1e-9))
    if len(lo_i) != 1 or len(up_i) != 1:
        lo, up = (1 - level) / 2, (1 + level) / 2
        raise SmartcareError(f"a {level:.0%} central interval needs levels {lo:g} and {up:g}")
    inside = (values[:, lo_i[0]] <= y) & (y <= values[:, up_i[0]])
    return np.where(np.isnan(y), np.nan, inside.astype(float))


# ----------------------------------------------------------------------------- table wrappers
def _matrix_with_truth(forecasts: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    fc = validate_forecasts(forecasts)
    keys, values = quantile_matrix(fc)  # (N, 23)
    tr = validate_targets(truth)[["date", "location", "value"]]
    tr = tr.rename(columns={"date": "target_end_date", "value": "observed"})
    merged = keys.merge(tr, on=["target_end_date", "location"], how="left", validate="many_to_one")
    return merged, values


def score_forecasts(forecasts: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Score every forecast against the target data.

    Args:
        forecasts: hubverse long table (``hub.validate_forecasts``), 23 quantiles per forecast.
        truth: target data with ``date, location, value``; joined on target_end_date = date and location.
    Returns:
        One row per forecast: the key columns (with ``model_id`` when present) and ``observed, wis,
        wis_log1p, ae_median, cov50, cov95``. Forecasts without an observation keep NaN scores.
    Raises:
        SmartcareError: bad forecasts (missing or non-monotone quantiles, ...) or bad target data.
    """
    keys, values = _matrix_with_truth(forecasts, truth)
    y = keys["observed"].to_numpy(dtype=float)
    out = keys.copy()
    out["wis"] = wis_array(values, y)
    # counts are non-negative: predictions below 0 are floored at 0 before log1p
    out["wis_log1p"] = wis_array(np.log1p(np.maximum(values, 0.0)), np.log1p(y))
    out["ae_median"] = np.abs(y - values[:, QUANTILES.index(0.5)])
    out["cov50"] = coverage_array(values, y, 0.5)
    out["cov95"] = coverage_array(values, y, 0.95)
    return out


def wis(forecasts: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per-forecast WIS on natural and log1p scales: keys, ``observed, wis, wis_log1p``."""
    scores = score_forecasts(forecasts, truth)
    return scores.drop(columns=["ae_median", "cov50", "cov95"])


def coverage(forecasts: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per-forecast 50% and 95% central-interval coverage (1/0): keys, ``observed, cov50, cov95``."""
    scores = score_forecasts(forecasts, truth)
    return scores.drop(columns=["wis", "wis_log1p", "ae_median"])


# ----------------------------------------------------------------------------- evaluation subsets
@dataclass(frozen=True)
class EvaluationSubset:
    """Which scored forecasts enter a season summary (FluSight evaluation protocol)."""

    exclude_locations: tuple[str, ...] = ()  # e.g. ("US",) for "states + DC + PR"
    max_target_end_date: str | None = None  # ISO date; later target weeks are dropped (None: keep all)
    exclude: tuple[tuple[str, str], ...] = ()  # (location, reference_date) forecasts left out


def select(scores: pd.DataFrame, subset: EvaluationSubset) -> pd.DataFrame:
    """Rows of ``scores`` inside ``subset``."""
    keep = ~scores["location"].isin(subset.exclude_locations)
    if subset.max_target_end_date is not None:
        keep &= scores["target_end_date"] <= pd.Timestamp(subset.max_target_end_date)
    for loc, ref in subset.exclude:
        keep &= ~((scores["location"] == loc) & (scores["reference_date"] == pd.Timestamp(ref)))
    return scores.loc[keep].reset_index(drop=True)


# ----------------------------------------------------------------------------- relative WIS
def _common(model_scores: pd.DataFrame, baseline_scores: pd.DataFrame, column: str) -> pd.DataFrame:
    for name, df in (("model", model_scores), ("baseline", baseline_scores)):
        missing = [c for c in (*FORECAST_KEYS, column) if c not in df.columns]
        if missing:
            raise SmartcareError(f"{name} scores lack columns {missing}")
        if df.duplicated(list(FORECAST_KEYS)).any():
            raise SmartcareError(f"{name} scores hold more than one model; pass one model's scores")
    m = model_scores[[*FORECAST_KEYS, column]].dropna()
    b = baseline_scores[[*FORECAST_KEYS, column]].dropna()
    common = m.merge(b, on=list(FORECAST_KEYS), suffixes=("_model", "_baseline"))
    if common.empty:
        raise SmartcareError("model and baseline share no scored forecast (reference date, location, ...)")
    return common


def relative_wis(model_scores: pd.DataFrame, baseline_scores: pd.DataFrame, scale: str = "natural") -> float:
    """Mean WIS of the model over mean WIS of the baseline on their common scored forecasts.

    Args:
        model_scores, baseline_scores: outputs of ``score_forecasts``/``wis`` for one model each.
        scale: "natural" (column ``wis``) or "log1p" (column ``wis_log1p``).
    Returns:
        The ratio; below 1 means the model beats the baseline.
    """
    if scale not in SCALES:
        raise SmartcareError(f"scale must be one of {SCALES}, not {scale!r}")
    column = "wis" if scale == "natural" else "wis_log1p"
    common = _common(model_scores, baseline_scores, column)
    return float(common[f"{column}_model"].mean() / common[f"{column}_baseline"].mean())


def summarize(scores: pd.DataFrame, baseline_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Season summary per model: n, mean WIS (natural, log1p), MAE, 50%/95% coverage and, with a
    baseline, relative WIS on both scales plus the number of common forecasts they were computed on.
    """
    scores = scores.copy()
    if "model_id" not in scores.columns:
        scores["model_id"] = "model"
    rows = []
    for model, s in scores.groupby("model_id", sort=True):
        s = s.dropna(subset=["wis"])
        row = {
            "model_id": model,
            "n": len(s),
            "mean_wis": s["wis"].mean(),
            "mean_wis_log1p": s["wis_log1p"].mean(),
            "mae": s["ae_median"].mean() if "ae_median" in s else np.nan,
            "cov50": s["cov50"].mean() if "cov50" in s else np.nan,
            "cov95": s["cov95"].mean() if "cov95" in s else np.nan,
        }
        if baseline_scores is not None:
            base = baseline_scores.drop(columns=["model_id"], errors="ignore")
            row["n_common"] = len(_common(s, base, "wis"))
            row["rel_wis"] = relative_wis(s, base, "natural")
            row["rel_wis_log1p"] = relative_wis(s, base, "log1p")
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate(
    forecasts: pd.DataFrame,
    truth: pd.DataFrame,
    baseline: pd.DataFrame | None = None,
    *,
    baseline_model: str | None = None,
    subset: EvaluationSubset = EvaluationSubset(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``forecasts`` (one or more models) and summarise them, relative to a baseline if given.

    The baseline is either a second forecast table holding one model (``baseline``) or the model named
    ``baseline_model`` inside ``forecasts``. Returns ``(scores, summary)`` as ``score_forecasts`` and
    ``summarize``, both restricted to ``subset``.
    """
    if baseline is not None and baseline_model is not None:
        raise SmartcareError("give a baseline table or a baseline model name, not both")
    scores = select(score_forecasts(forecasts, truth), subset)
    base_scores = None
    if baseline is not None:
        base_scores = select(score_forecasts(baseline, truth), subset)
        if "model_id" in base_scores.columns and base_scores["model_id"].nunique() > 1:
            names = sorted(base_scores["model_id"].unique())
            raise SmartcareError(f"the baseline table holds several models {names}; keep one")
    elif baseline_model is not None:
        names = sorted(scores["model_id"].unique()) if "model_id" in scores.columns else []
        if baseline_model not in names:
            raise SmartcareError(f"baseline model {baseline_model!r} is not among the models {names}")
        base_scores = scores[scores["model_id"] == baseline_model]
    return scores, summarize(scores, base_scores)
