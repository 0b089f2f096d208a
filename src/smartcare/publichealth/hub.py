"""Hubverse-format forecast tables and FluSight target data: read, validate, write.

The long ("hubverse") format has one row per quantile:
``reference_date, target, horizon, target_end_date, location, output_type, output_type_id, value``
plus an optional ``model_id`` column (hubverse model-output schema, FluSight-forecast-hub 2023-).
The wide layout of the shipped FluSight files (``season, model, reference_date, location, horizon,
target_end_date, q0.01 .. q0.99``) is read as well and converted to long.

Target data follows FluSight ``target-data/target-hospital-admissions.csv``: ``date`` (week-ending
Saturday), ``location`` (FIPS code as text, "US" = national), ``value`` (weekly count), other columns kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError

#: The 23 FluSight quantile levels (0.01, 0.025, 0.05, 0.10, ..., 0.90, 0.95, 0.975, 0.99).
QUANTILES: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99,
)
#: Columns of a hubverse long forecast table, in order.
HUB_COLUMNS: tuple[str, ...] = (
    "reference_date", "target", "horizon", "target_end_date", "location",
    "output_type", "output_type_id", "value",
)
#: Columns identifying one forecast (one predictive distribution); ``model_id`` is added when present.
FORECAST_KEYS: tuple[str, ...] = ("reference_date", "target", "horizon", "target_end_date", "location")
#: Default FluSight target name.
DEFAULT_TARGET = "wk inc flu hosp"

_MONOTONE_TOL = 1e-9  # allowed decrease between consecutive quantiles (float round-off)


def forecast_keys(df: pd.DataFrame) -> list[str]:
    """Key columns of one forecast in ``df``: FORECAST_KEYS plus ``model_id`` when present."""
    return (["model_id"] if "model_id" in df.columns else []) + list(FORECAST_KEYS)


def _read_table(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise SmartcareError(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            if "location" in df.columns:
                df["location"] = df["location"].astype(str)
            return df
        return pd.read_csv(path, dtype={"location": str})
    except (OSError, ValueError, ImportError) as err:
        raise SmartcareError(f"cannot read {path}: {err}") from err


def _quantile_column(level: float) -> str:
    return f"q{level:g}"


def wide_to_long(wide: pd.DataFrame, target: str = DEFAULT_TARGET) -> pd.DataFrame:
    """Convert the shipped wide layout (one ``q<level>`` column per quantile) to hubverse long format.

    A ``model`` column becomes ``model_id``; ``season`` and other extra columns are dropped.
    Raises SmartcareError when a quantile column or a key column is missing.
    """
    qcols = [_quantile_column(q) for q in QUANTILES]
    missing = [c for c in qcols + ["reference_date", "location", "horizon"] if c not in wide.columns]
    if missing:
        raise SmartcareError(f"wide forecast table lacks columns {missing}")
    w = wide.rename(columns={"model": "model_id"}).copy()
    if "target" not in w.columns:
        w["target"] = target
    if "target_end_date" not in w.columns:
        w["target_end_date"] = pd.to_datetime(w["reference_date"]) + pd.to_timedelta(7 * w["horizon"], "D")
    ids = [c for c in ["model_id", *FORECAST_KEYS] if c in w.columns]
    values = w[qcols].to_numpy(dtype=float)  # (N, 23)
    n = len(w)
    long = w.loc[w.index.repeat(len(QUANTILES)), ids].reset_index(drop=True)
    long["output_type"] = "quantile"
    long["output_type_id"] = np.tile(np.asarray(QUANTILES), n)
    long["value"] = values.reshape(-1)  # (N*23,) row-major: forecast, then level
    return long


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce column types; raise SmartcareError naming the column that cannot be parsed."""
    out = df.copy()
    for col in ("reference_date", "target_end_date"):
        try:
            out[col] = pd.to_datetime(out[col], format="mixed").dt.normalize()
        except (ValueError, TypeError) as err:
            raise SmartcareError(f"column {col!r} holds values that are not dates: {err}") from err
    for col, kind in (("horizon", "integer"), ("output_type_id", "number"), ("value", "number")):
        num = pd.to_numeric(out[col], errors="coerce")
        if num.isna().any():
            bad = out.loc[num.isna(), col].iloc[0]
            raise SmartcareError(f"column {col!r} must be a {kind} with no missing values; found {bad!r}")
        if kind == "integer" and not np.all(np.mod(num, 1) == 0):
            raise SmartcareError(f"column {col!r} must hold integers")
        out[col] = num.astype(int) if kind == "integer" else num.astype(float)
    out["location"] = out["location"].astype(str)
    out["target"] = out["target"].astype(str)
    out["output_type"] = out["output_type"].astype(str)
    return out


def validate_forecasts(df: pd.DataFrame, levels: tuple[float, ...] = QUANTILES) -> pd.DataFrame:
    """Check a hubverse long forecast table and return a normalised copy (dates parsed, types coerced).

    Checks: required columns; no missing or non-numeric values; ``output_type == "quantile"``;
    ``target_end_date == reference_date + 7*horizon`` days; no duplicated (forecast, level) rows;
    every forecast has exactly the quantile ``levels``; quantile values non-decreasing in the level.

    Raises:
        SmartcareError: naming the first problem found (and the offending forecast).
    """
    if not isinstance(df, pd.DataFrame):
        raise SmartcareError("forecasts must be a table (pandas DataFrame)")
    missing = [c for c in HUB_COLUMNS if c not in df.columns]
    if missing:
        raise SmartcareError(f"forecast table lacks hubverse columns {missing}; expected {list(HUB_COLUMNS)}")
    if df.empty:
        raise SmartcareError("forecast table is empty")
    other = sorted(set(df["output_type"].astype(str)) - {"quantile"})
    if other:
        raise SmartcareError(f"only output_type 'quantile' is supported; found {other}")
    out = _normalise(df)
    expected_end = out["reference_date"] + pd.to_timedelta(7 * out["horizon"], "D")
    bad = out["target_end_date"] != expected_end
    if bad.any():
        r = out.loc[bad].iloc[0]
        raise SmartcareError(
            f"target_end_date {r.target_end_date.date()} is not reference_date {r.reference_date.date()} "
            f"+ 7*horizon ({r.horizon}) days"
        )
    keys = forecast_keys(out)
    dup = out.duplicated(keys + ["output_type_id"])
    if dup.any():
        r = out.loc[dup].iloc[0]
        raise SmartcareError(f"duplicated quantile {r.output_type_id} for forecast {_describe(r, keys)}")
    quantile_matrix(out, levels)  # raises on missing levels or non-monotone quantiles
    return out


def _describe(row: pd.Series, keys: list[str]) -> str:
    parts = []
    for k in keys:
        v = row[k]
        parts.append(f"{k}={v.date() if isinstance(v, pd.Timestamp) else v}")
    return "(" + ", ".join(parts) + ")"


def quantile_matrix(
    df: pd.DataFrame, levels: tuple[float, ...] = QUANTILES
) -> tuple[pd.DataFrame, np.ndarray]:
    """Pivot a normalised long table to one row per forecast.

    Returns ``(keys, values)``: ``keys`` a DataFrame of the forecast key columns (N rows) and
    ``values`` an array of shape (N, len(levels)) with the quantiles in level order.
    Raises SmartcareError when a forecast lacks a level, has an extra one, or its quantiles decrease.
    """
    keys = forecast_keys(df)
    level_arr = np.asarray(levels, dtype=float)
    pos = np.searchsorted(level_arr, df["output_type_id"].to_numpy(dtype=float))
    pos = np.clip(pos, 0, len(levels) - 1)
    known = np.isclose(level_arr[pos], df["output_type_id"].to_numpy(dtype=float), rtol=0, atol=1e-9)
    if not known.all():
        r = df.loc[~known].iloc[0]
        raise SmartcareError(
            f"quantile level {r.output_type_id} of forecast {_describe(r, keys)} is not one of the "
            f"{len(levels)} expected levels {list(levels)}"
        )
    codes = df.groupby(keys, sort=False).ngroup().to_numpy()  # forecasts numbered by first appearance
    key_frame = df.loc[~pd.Series(codes).duplicated().to_numpy(), keys].reset_index(drop=True)
    values = np.full((len(key_frame), len(levels)), np.nan)  # (N, Q)
    values[codes, pos] = df["value"].to_numpy(dtype=float)
    holes = np.isnan(values)
    if holes.any():
        i, j = np.argwhere(holes)[0]
        n_missing = int(holes[i].sum())
        raise SmartcareError(
            f"forecast {_describe(key_frame.iloc[i], keys)} lacks {n_missing} of the {len(levels)} quantiles "
            f"(first missing level {levels[j]})"
        )
    drops = np.diff(values, axis=1) < -_MONOTONE_TOL  # (N, Q-1)
    if drops.any():
        i, j = np.argwhere(drops)[0]
        raise SmartcareError(
            f"quantiles of forecast {_describe(key_frame.iloc[i], keys)} decrease: "
            f"q{levels[j]:g}={values[i, j]:g} > q{levels[j + 1]:g}={values[i, j + 1]:g}"
        )
    return key_frame, values


def forecasts_from_table(raw: pd.DataFrame) -> pd.DataFrame:
    """A validated long table from a hubverse long table or a FluSight wide one (``q0.5`` columns)."""
    if _quantile_column(0.5) in raw.columns and "output_type_id" not in raw.columns:
        raw = wide_to_long(raw)
    return validate_forecasts(raw)


def read_forecasts(path: Path | str) -> pd.DataFrame:
    """Read forecasts (CSV or Parquet; hubverse long or FluSight wide) as a validated long table."""
    return forecasts_from_table(_read_table(path))


def write_forecasts(df: pd.DataFrame, path: Path | str) -> Path:
    """Validate ``df`` and write it in hubverse long format (Parquet if the suffix says so, else CSV).

    Nothing is written when validation fails (SmartcareError). Dates are written as YYYY-MM-DD.
    """
    out = validate_forecasts(df)
    cols = (["model_id"] if "model_id" in out.columns else []) + list(HUB_COLUMNS)
    out = out[cols].copy()
    for col in ("reference_date", "target_end_date"):
        out[col] = out[col].dt.strftime("%Y-%m-%d")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path


def validate_targets(df: pd.DataFrame) -> pd.DataFrame:
    """Check FluSight target data (``date, location, value``) and return a normalised copy.

    Rows whose value is missing are dropped (they cannot be scored). Raises SmartcareError on missing
    columns, unparsable dates, negative values or duplicated (date, location) rows.
    """
    missing = [c for c in ("date", "location", "value") if c not in df.columns]
    if missing:
        raise SmartcareError(f"target table lacks columns {missing}; expected date, location, value")
    out = df.copy()
    try:
        out["date"] = pd.to_datetime(out["date"], format="mixed").dt.normalize()
    except (ValueError, TypeError) as err:
        raise SmartcareError(f"target column 'date' holds values that are not dates: {err}") from err
    value = pd.to_numeric(out["value"], errors="coerce")
    non_numeric = value.isna() & out["value"].notna()
    if non_numeric.any():
        bad = out.loc[non_numeric, "value"].iloc[0]
        raise SmartcareError(f"target column 'value' is not numeric: {bad!r}")
    out["value"] = value.astype(float)
    out["location"] = out["location"].astype(str)
    out = out[out["value"].notna()]
    if (out["value"] < 0).any():
        r = out[out["value"] < 0].iloc[0]
        raise SmartcareError(f"negative target value {r.value} at {r.date.date()}, location {r.location}")
    dup = out.duplicated(["date", "location"])
    if dup.any():
        r = out[dup].iloc[0]
        raise SmartcareError(f"duplicated target row for date {r.date.date()}, location {r.location}")
    return out.reset_index(drop=True)


def read_targets(path: Path | str) -> pd.DataFrame:
    """Read FluSight target data (CSV or Parquet) as a validated table; see ``validate_targets``."""
    return validate_targets(_read_table(path))
