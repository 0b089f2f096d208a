"""Global gradient-boosted quantile forecaster: one model over all locations' series.

For each of 11 quantile levels (``GBMConfig.fit_levels``) a histogram gradient-boosted tree (scikit-learn
``HistGradientBoostingRegressor``, ``loss="quantile"``) is fitted to the change of ``log1p`` weekly count
from the last observed week to 1-4 weeks later, pooling every (origin week, location, steps) example of
the history (features in :mod:`.features`). The predicted changes are sorted (Chernozhukov et al. 2010
rearrangement), widened about the median by ``spread``, interpolated to the 23 FluSight levels (linear in
the normal score) and mapped back with ``expm1(anchor + .)``; quantile regression is equivariant under
that monotone map, so these are count quantiles (clipped at 0). The approach follows Flusion (Ray et al.,
UMass, FluSight 2023-24), which used gradient-boosted quantile regression on a transformed scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingRegressor

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub
from smartcare.publichealth.forecast.data import hub_frame, to_wide
from smartcare.publichealth.forecast.extra import ilinet_pseudo_counts
from smartcare.publichealth.forecast.features import FEATURES, forecast_rows, training_rows

FIT_LEVELS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99)


def interpolate_levels(values: np.ndarray, fitted, levels) -> np.ndarray:
    """Quantiles at ``levels`` from sorted quantiles at ``fitted`` levels, linear in the normal score.

    In: ``values`` (..., len(fitted)). Out: (..., len(levels)); levels outside ``fitted`` are clamped.
    """
    zf = norm.ppf(np.asarray(fitted, dtype=float))
    zl = norm.ppf(np.asarray(levels, dtype=float))
    flat = values.reshape(-1, values.shape[-1])  # (N, F)
    out = np.vstack([np.interp(zl, zf, row) for row in flat])  # (N, Q)
    return out.reshape(*values.shape[:-1], len(levels))


@dataclass(frozen=True)
class GBMConfig:
    """Settings of the global quantile GBM; defaults chosen on the 2023-24 backtest only."""

    max_iter: int = 100  # boosting rounds per quantile level
    learning_rate: float = 0.08  # shrinkage
    max_leaf_nodes: int = 7  # tree size
    min_samples_leaf: int = 200  # smallest leaf; guards the extreme quantiles against overfitting
    l2_regularization: float = 1.0  # leaf-value ridge penalty
    max_steps: int = 4  # longest lead (weeks from the last observation) in the training set
    min_weeks: int = 8  # shortest history (weeks) the model is willing to train on
    drop_features: tuple[str, ...] = ("season_week",)  # features.FEATURES left out (season timing overfits)
    fit_levels: tuple[float, ...] = FIT_LEVELS  # levels with their own booster; the rest interpolated
    spread: float = 1.2  # widen (>1) the log-scale quantiles about the median (1.2: 2023-24 coverage)
    seed: int = 0  # random_state of each tree ensemble

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.learning_rate <= 0 or self.max_steps < 1:
            raise SmartcareError("GBMConfig needs max_iter >= 1, learning_rate > 0 and max_steps >= 1")
        if 0.5 not in self.fit_levels or self.spread <= 0:
            raise SmartcareError("GBMConfig.fit_levels must include 0.5 and spread must be > 0")


class GlobalQuantileGBM:
    """Quantile GBM trained across all locations (see module docstring).

    With ``extra`` (a table or "ilinet"), those series join the training examples only.

    ``fit(targets)`` takes a prepared target table (``forecast.data.prepare_targets``) holding only the
    rows the forecast may use; ``predict(reference_date)`` returns a hubverse quantile table.
    """

    name = "gbm-global"

    @classmethod
    def with_ilinet(cls) -> GlobalQuantileGBM:
        """The global GBM with CDC ILINet pseudo-count seasons added to its training set."""
        return cls(extra="ilinet")

    def __init__(self, config: GBMConfig | None = None, levels=hub.QUANTILES,
                 extra: pd.DataFrame | str | None = None):
        self.config = config
        self.levels = levels
        # extra training-only series (``date, location, value, population``); "ilinet" loads
        # forecast.extra.ilinet_pseudo_counts() from the shared data at fit time
        self.extra = extra

    def fit(self, targets: pd.DataFrame) -> GlobalQuantileGBM:
        """Fit one booster per quantile level on every example in ``targets``; returns self.

        Raises:
            SmartcareError: fewer than ``min_weeks`` weeks of history.
        """
        cfg = self.config or GBMConfig()
        wide = to_wide(targets)  # (T, L)
        if len(wide) < cfg.min_weeks:
            raise SmartcareError(f"history too short for the global model: {len(wide)} weeks, "
                                 f"needs at least {cfg.min_weeks}")
        population = targets.groupby("location")["population"].median()
        x, y, _ = training_rows(wide, population, cfg.max_steps)  # (N, F), (N,)
        extra = ilinet_pseudo_counts() if isinstance(self.extra, str) and self.extra == "ilinet" else self.extra
        if isinstance(extra, str):
            raise SmartcareError(f"unknown extra training history {extra!r}; use 'ilinet' or a table")
        ex = None if extra is None else extra[extra["date"] <= targets["date"].max()]  # never later data
        if ex is not None and len(ex):
            ex_pop = ex.groupby("location")["population"].median()
            xe, ye, _ = training_rows(to_wide(ex), ex_pop, cfg.max_steps)
            x, y = np.vstack([x, xe]), np.concatenate([y, ye])  # (N + Ne, F)
        self.keep_ = np.array([f not in cfg.drop_features for f in FEATURES])
        x = x[:, self.keep_]
        self.models_ = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for q in cfg.fit_levels:
                m = HistGradientBoostingRegressor(
                    loss="quantile", quantile=float(q), max_iter=cfg.max_iter,
                    learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
                    min_samples_leaf=cfg.min_samples_leaf, l2_regularization=cfg.l2_regularization,
                    early_stopping=False, random_state=cfg.seed)
                self.models_.append(m.fit(x, y))
        self.wide_ = wide
        self.population_ = population
        self.n_examples_ = len(y)
        self.config_ = cfg
        return self

    def predict(self, reference_date, horizons=(0, 1, 2, 3)) -> pd.DataFrame:
        """Hubverse quantile table for every fitted location; raises SmartcareError before ``fit``."""
        if not hasattr(self, "models_"):
            raise SmartcareError("GlobalQuantileGBM.predict called before fit")
        ref = pd.Timestamp(reference_date)
        wide = self.wide_
        last_dates = wide.apply(lambda c: c.last_valid_index())  # (L,)
        targets = np.array([ref + pd.Timedelta(weeks=int(h)) for h in horizons], dtype="datetime64[ns]")
        steps = (targets[None, :] - last_dates.to_numpy(dtype="datetime64[ns]")[:, None]) // np.timedelta64(7, "D")
        steps = steps.astype(int)  # (L, H)
        if steps.min() < 1:
            raise SmartcareError(f"history has data on or after the reference date {ref:%Y-%m-%d}")
        x, anchor = forecast_rows(wide, self.population_, np.minimum(steps, self.config_.max_steps))
        x = x[:, self.keep_]
        delta = np.column_stack([m.predict(x) for m in self.models_])  # (L*H, Q)
        n_loc, n_h = steps.shape
        delta = np.sort(delta.reshape(n_loc, n_h, -1), axis=-1)  # (L, H, F) rearranged
        mid = delta[..., [list(self.config_.fit_levels).index(0.5)]]
        delta = mid + self.config_.spread * (delta - mid)
        logq = anchor[:, None, None] + interpolate_levels(delta, self.config_.fit_levels, self.levels)
        values = np.expm1(logq)  # (L, H, Q)
        return hub_frame(ref, list(wide.columns), horizons, self.levels, values)

