"""Features for the global forecaster: one row per (origin week, location, steps ahead).

Everything is on the ``log1p`` count scale, so series of very different sizes share one model (the
"global model" pattern of Flusion, Ray et al., FluSight 2023-24, and of Montero-Manso & Hyndman 2021,
Int J Forecast 37:1632). A row's features use only weeks up to its origin; its label is the change of ``log1p``
count from the origin to ``steps`` weeks later.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = (
    "steps",  # weeks from the origin (last observed week) to the target week
    "level",  # log1p(count) at the origin
    "level_rate",  # log(count per 100k + 0.1) at the origin; NaN when the population is unknown
    "d1", "d2", "d3", "d4",  # level minus level k weeks earlier
    "dd1",  # d1 of the previous week: curvature
    "smooth3",  # level minus the mean level of the last 3 weeks
    "from_peak",  # level minus the highest level of the last 52 weeks
    "from_floor",  # level minus the lowest level of the last 52 weeks
    "season_week",  # weeks since 1 August of the origin's season
)


def _log_grid(wide: pd.DataFrame) -> np.ndarray:
    return np.log1p(wide.to_numpy(dtype=float))  # (T, L)


def origin_features(wide: pd.DataFrame, population: pd.Series | None = None) -> dict[str, np.ndarray]:
    """Per-origin features (everything in :data:`FEATURES` except ``steps``).

    In: ``wide`` (T weeks, L locations) of counts with NaN for unreported weeks; ``population`` indexed
    by location (may hold NaN). Out: dict of arrays shaped (T, L); entry [t, j] uses rows <= t only.
    """
    z = _log_grid(wide)  # (T, L)
    zdf = pd.DataFrame(z)
    feats: dict[str, np.ndarray] = {"level": z}
    for k in range(1, 5):
        feats[f"d{k}"] = z - zdf.shift(k).to_numpy()
    feats["dd1"] = feats["d1"] - zdf.diff().shift(1).to_numpy()
    feats["smooth3"] = z - zdf.rolling(3, min_periods=1).mean().to_numpy()
    feats["from_peak"] = z - zdf.rolling(52, min_periods=1).max().to_numpy()
    feats["from_floor"] = z - zdf.rolling(52, min_periods=1).min().to_numpy()
    pop = np.full(z.shape[1], np.nan)
    if population is not None:
        pop = population.reindex(wide.columns).to_numpy(dtype=float)
    rate = wide.to_numpy(dtype=float) / pop[None, :] * 1e5  # (T, L)
    feats["level_rate"] = np.log(rate + 0.1)
    dates = pd.DatetimeIndex(wide.index)
    start_year = np.where(dates.month >= 8, dates.year, dates.year - 1)
    season_start = pd.to_datetime([f"{y}-08-01" for y in start_year])
    week = ((dates - season_start).days // 7).to_numpy(dtype=float)
    feats["season_week"] = np.repeat(week[:, None], z.shape[1], axis=1)  # (T, L)
    return feats


def training_rows(wide: pd.DataFrame, population: pd.Series | None, max_steps: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (origin, location, steps) examples whose origin and target week are both observed.

    Out: ``X`` (N, len(FEATURES)), ``y`` (N,) the log1p change, ``origin_index`` (N,) row of the origin.
    """
    feats = origin_features(wide, population)
    z = feats["level"]  # (T, L)
    xs, ys, origins = [], [], []
    for s in range(1, max_steps + 1):
        label = np.full_like(z, np.nan)
        label[:-s] = z[s:] - z[:-s]  # (T, L): change from origin t to t+s
        ok = ~np.isnan(label)
        t_idx, _ = np.nonzero(ok)
        cols = [np.full(t_idx.size, float(s)) if name == "steps" else feats[name][ok] for name in FEATURES]
        xs.append(np.column_stack(cols))  # (n_s, F)
        ys.append(label[ok])
        origins.append(t_idx)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(origins)


def forecast_rows(wide: pd.DataFrame, population: pd.Series | None, steps: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Rows at each location's last observed week.

    In: ``steps`` (L, H) weeks ahead for each location and horizon. Out: ``X`` (L*H, F) ordered
    location-major, and ``anchor`` (L,) the log1p count at each location's last observation.
    """
    feats = origin_features(wide, population)
    z = feats["level"]  # (T, L)
    observed = ~np.isnan(z)
    last = z.shape[0] - 1 - np.argmax(observed[::-1], axis=0)  # (L,) last observed row per location
    cols = np.arange(z.shape[1])
    n_h = steps.shape[1]
    rows = []
    for name in FEATURES:
        if name == "steps":
            rows.append(steps.reshape(-1).astype(float))
        else:
            rows.append(np.repeat(feats[name][last, cols], n_h))
    return np.column_stack(rows), z[last, cols]
