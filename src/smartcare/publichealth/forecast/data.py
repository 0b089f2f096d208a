"""Target series for forecasting: read, validate, cut at a reference date, pivot to a week x location grid.

Input is the FluSight target-data layout (``cdcepi/FluSight-forecast-hub`` ``target-data/``): one row per
(week-ending ``date``, ``location``) with the weekly count in ``value``; optional ``location_name``,
``weekly_rate`` (per 100k) or ``population``. Rows whose ``value`` is missing (NaN) are weeks that were
not reported; they are dropped, as the FluSight baseline does (``drop_na``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub


def read_targets(path: str | Path) -> pd.DataFrame:
    """Read a FluSight target table (CSV or Parquet) ready for forecasting.

    Raises:
        SmartcareError: the file is missing or unreadable, or fails :func:`prepare_targets`.
    """
    return prepare_targets(hub.read_targets(path))


def prepare_targets(df: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise a target table for forecasting.

    In: columns ``date, location, value`` (+ optional ``location_name``, ``weekly_rate``, ``population``).
    Out: a copy validated by :func:`smartcare.publichealth.hub.validate_targets` (dates parsed, NaN
    values dropped, no negatives or duplicates), with a ``population`` column (from ``population``, else
    ``value / weekly_rate * 1e5``, else NaN), sorted by location then date.

    Raises:
        SmartcareError: hub validation fails, a count is not an integer, or a location's dates are not
            whole weeks apart.
    """
    out = hub.validate_targets(df)
    if out.empty:
        raise SmartcareError("targets table has no rows with a value")
    if "population" in out.columns:
        out["population"] = pd.to_numeric(out["population"], errors="coerce").astype(float)
    elif "weekly_rate" in out.columns:
        rate = pd.to_numeric(out["weekly_rate"], errors="coerce")
        pop = (out["value"] / rate * 1e5).where(rate > 0)
        out["population"] = pop.groupby(out["location"]).transform("median")
    else:
        out["population"] = np.nan
    frac = out[np.abs(out["value"] - np.round(out["value"])) > 1e-9]
    if len(frac):
        r = frac.iloc[0]
        raise SmartcareError(f"non-integer count {r['value']} at location {r['location']} "
                             f"on {r['date']:%Y-%m-%d}")
    out = out.sort_values(["location", "date"]).reset_index(drop=True)
    gaps = out.groupby("location")["date"].diff().dt.days.dropna()
    if len(gaps) and (gaps % 7 != 0).any():
        loc = out.loc[gaps[gaps % 7 != 0].index[0], "location"]
        raise SmartcareError(f"location {loc} has dates that are not whole weeks apart")
    return out


def history_before(targets: pd.DataFrame, reference_date) -> pd.DataFrame:
    """Rows dated strictly before ``reference_date``: all that a forecast made on that date may use."""
    return targets[targets["date"] < pd.Timestamp(reference_date)]


def to_wide(targets: pd.DataFrame) -> pd.DataFrame:
    """Pivot to a grid: index = every week from the first to the last date, columns = locations.

    Weeks a location did not report are NaN. Out shape: (n_weeks, n_locations).
    """
    wide = targets.pivot(index="date", columns="location", values="value")
    full = pd.date_range(wide.index.min(), wide.index.max(), freq="7D")
    return wide.reindex(full)


def check_reference_date(targets: pd.DataFrame, reference_date) -> pd.Timestamp:
    """Validate ``reference_date`` against the history and return it as a Timestamp.

    Raises:
        SmartcareError: no rows before it, or it is not a whole number of weeks after the data's dates.
    """
    try:
        ref = pd.Timestamp(reference_date)
    except (ValueError, TypeError) as err:
        raise SmartcareError(f"reference date {reference_date!r} is not a date") from err
    before = history_before(targets, ref)
    if before.empty:
        raise SmartcareError(f"no target rows dated before the reference date {ref:%Y-%m-%d}")
    if (ref - before["date"].max()).days % 7 != 0:
        raise SmartcareError(f"reference date {ref:%Y-%m-%d} is not on the weekday of the target weeks "
                             f"(last week ends {before['date'].max():%Y-%m-%d})")
    return ref


def hub_frame(reference_date: pd.Timestamp, locations, horizons, levels, values: np.ndarray) -> pd.DataFrame:
    """Hubverse long-format quantile table.

    In: ``values`` of shape (n_locations, n_horizons, n_levels). Out: one row per
    (location, horizon, level) with columns :data:`HUB_COLUMNS`; quantiles are sorted along the level
    axis and clipped at zero, so they are non-decreasing and non-negative.
    """
    vals = np.maximum(np.sort(np.asarray(values, dtype=float), axis=-1), 0.0)  # (L, H, Q)
    n_loc, n_h, n_q = vals.shape
    loc = np.repeat(np.asarray(list(locations), dtype=object), n_h * n_q)
    hz = np.tile(np.repeat(np.asarray(list(horizons)), n_q), n_loc)
    lv = np.tile(np.asarray(list(levels), dtype=float), n_loc * n_h)
    return pd.DataFrame({
        "reference_date": reference_date.strftime("%Y-%m-%d"),
        "target": hub.DEFAULT_TARGET,
        "horizon": hz.astype(int),
        "target_end_date": (reference_date + pd.to_timedelta(7 * hz, unit="D")).strftime("%Y-%m-%d"),
        "location": loc,
        "output_type": "quantile",
        "output_type_id": lv,
        "value": vals.reshape(-1),
    })[list(hub.HUB_COLUMNS)]
