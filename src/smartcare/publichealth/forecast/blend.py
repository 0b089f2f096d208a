"""Quantile averaging ("Vincentization") of several forecasters: the weighted mean, level by level.

Averaging quantile functions level by level is how the FluSight and COVID-19 Forecast Hub ensembles are
built (median or mean per level); a weighted mean of non-decreasing quantiles stays non-decreasing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub
from smartcare.publichealth.forecast.baseline import FluSightBaseline
from smartcare.publichealth.forecast.gbm import GlobalQuantileGBM

_KEYS = ["reference_date", "target", "horizon", "target_end_date", "location", "output_type", "output_type_id"]


class QuantileBlend:
    """Weighted quantile average of member forecasters; each is fitted on the same history.

    Default (registry name ``gbm-blend``): 0.35 x global GBM, 0.35 x global GBM trained with ILINet
    seasons added, 0.3 x FluSight baseline; weights chosen on the 2023-24 backtest only.
    """

    name = "gbm-blend"

    def __init__(self, members=None, weights=None):
        self.members = members
        self.weights = weights

    def fit(self, targets: pd.DataFrame) -> QuantileBlend:
        """Fit every member on ``targets``; returns self. Raises SmartcareError on bad weights."""
        members = self.members if self.members is not None else [
            GlobalQuantileGBM(), GlobalQuantileGBM.with_ilinet(), FluSightBaseline()]
        weights = np.asarray(self.weights if self.weights is not None else (0.35, 0.35, 0.3), dtype=float)
        if len(weights) != len(members) or (weights < 0).any() or weights.sum() <= 0:
            raise SmartcareError("QuantileBlend needs one non-negative weight per member, not all zero")
        self.members_ = [m.fit(targets) for m in members]
        self.weights_ = weights / weights.sum()
        return self

    def predict(self, reference_date, horizons=(0, 1, 2, 3)) -> pd.DataFrame:
        """Hubverse table: per (location, horizon, level), the weighted mean of the members' quantiles."""
        if not hasattr(self, "members_"):
            raise SmartcareError("QuantileBlend.predict called before fit")
        tables = [m.predict(reference_date, horizons=horizons) for m in self.members_]
        return blend_forecasts(tables, self.weights_)


def blend_forecasts(tables: list[pd.DataFrame], weights) -> pd.DataFrame:
    """Weighted mean of hubverse quantile tables, per (forecast, level); rows missing in any table drop.

    ``weights`` are normalised to sum to 1. Out: hubverse long table sorted by location, horizon, level.
    """
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    out = None
    for wi, fc in zip(w, tables, strict=True):
        part = fc.set_index(_KEYS)["value"] * wi
        out = part if out is None else out.add(part, fill_value=np.nan)
    out = out.dropna().rename("value").reset_index()
    out = out.sort_values(["reference_date", "location", "horizon", "output_type_id"], kind="stable")
    return out[list(hub.HUB_COLUMNS)].reset_index(drop=True)
