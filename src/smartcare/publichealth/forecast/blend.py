"""Quantile averaging ("Vincentization") of several forecasters: the weighted mean, level by level.

Averaging quantile functions is how the FluSight ensemble is built (median or mean per level; Ray et al.
2023, Int J Forecast 39:1366); a weighted mean of non-decreasing quantiles stays non-decreasing.
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
    """Weighted quantile average of member forecasters; each is fitted on the same history."""

    name = "gbm-blend"

    def __init__(self, members=None, weights=None):
        self.members = members
        self.weights = weights

    def fit(self, targets: pd.DataFrame) -> QuantileBlend:
        """Fit every member on ``targets``; returns self. Raises SmartcareError on bad weights."""
        members = self.members if self.members is not None else [GlobalQuantileGBM(), FluSightBaseline()]
        weights = np.asarray(self.weights if self.weights is not None else (0.7, 0.3), dtype=float)
        if len(weights) != len(members) or (weights < 0).any() or weights.sum() <= 0:
            raise SmartcareError("QuantileBlend needs one non-negative weight per member, not all zero")
        self.members_ = [m.fit(targets) for m in members]
        self.weights_ = weights / weights.sum()
        return self

    def predict(self, reference_date, horizons=(0, 1, 2, 3)) -> pd.DataFrame:
        """Hubverse table: per (location, horizon, level), the weighted mean of the members' quantiles."""
        if not hasattr(self, "members_"):
            raise SmartcareError("QuantileBlend.predict called before fit")
        out = None
        for w, m in zip(self.weights_, self.members_, strict=True):
            fc = m.predict(reference_date, horizons=horizons).set_index(_KEYS)["value"] * w
            out = fc if out is None else out.add(fc, fill_value=np.nan)
        out = out.dropna().rename("value").reset_index()
        out = out.sort_values(["location", "horizon", "output_type_id"], kind="stable")
        return out[list(hub.HUB_COLUMNS)].reset_index(drop=True)
