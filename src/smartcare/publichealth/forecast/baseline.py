"""The FluSight-baseline forecaster (CDC FluSight hub, 2023-24 onwards).

Method, as in ``epipredict::cdc_baseline_forecaster`` with ``layer_cdc_flatline_quantiles`` (CMU Delphi;
the code run by ``cdcepi/Flusight-baseline``), which follows the COVID-19 Forecast Hub quantile baseline
(``reichlab/simplets``, Cramer et al. 2022, PNAS 119:e2113561119):

1. the median is flat: the last observed count;
2. the residuals of that flat line are the one-week differences ``y[t] - y[t-1]`` of the location's
   history; with ``symmetrize`` their negatives are added, so the distribution is symmetric about 0;
3. ``nsim`` evenly spaced quantiles (type 7) of the residuals are added to the last value (clipped at 0
   with ``nonneg``) for one step ahead; each further step adds a fresh shuffle of the same residuals,
   re-centres the median on the last value (``symmetrize``) and clips at 0;
4. the 23 quantile levels are read off the simulated values at each step (type 7).

The hub's 2024-25 files also round quantiles below the median down and the others up
(``round_quantiles``), and train on weeks from 2022-08-06 (``min_date``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub
from smartcare.publichealth.forecast.data import hub_frame, to_wide


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the FluSight baseline; defaults are ``cdc_baseline_args_list()`` as the hub ran it."""

    nsim: int = 100_000  # simulated draws per location (hub: nsims = 1e5)
    symmetrize: bool = True  # add negated residuals and re-centre the median on the last value
    nonneg: bool = True  # clip simulated counts at zero at every step
    min_date: str | None = None  # ignore history before this date (hub 2024-25: "2022-08-06")
    round_quantiles: bool = False  # floor levels < 0.5, ceil the rest (hub 2024-25 files)
    seed: int = 20231014  # seed of the shuffles (results differ from R's only by Monte Carlo noise)

    def __post_init__(self) -> None:
        if self.nsim < 2:
            raise SmartcareError(f"nsim must be at least 2, got {self.nsim}")


def propagate_quantiles(residuals: np.ndarray, last: float, steps: int, levels, cfg: BaselineConfig,
                        rng: np.random.Generator) -> np.ndarray:
    """Quantiles of the flat-line forecast ``1..steps`` weeks after the last observation ``last``.

    In: one-week differences ``residuals`` (1-D, no NaN). Out: array (steps, len(levels)).
    Mirrors ``epipredict:::propagate_samples``.
    """
    r = np.concatenate([residuals, -residuals]) if cfg.symmetrize else residuals
    samp = np.quantile(r, np.linspace(0.0, 1.0, cfg.nsim))  # (nsim,) type 7
    raw = samp + last
    if cfg.nonneg:
        raw = np.maximum(raw, 0.0)
    out = [np.quantile(raw, levels)]
    for _ in range(1, steps):
        samp = rng.permutation(samp)
        raw = raw + samp
        cur = raw - (np.median(raw) - last) if cfg.symmetrize else raw
        if cfg.nonneg:
            cur = np.maximum(cur, 0.0)
        out.append(np.quantile(cur, levels))
    return np.vstack(out)  # (steps, Q)


class FluSightBaseline:
    """Flat-line forecaster with quantiles from symmetrised one-week differences (see module docstring).

    ``fit(targets)`` takes a prepared target table (``forecast.data.prepare_targets``) holding only the
    rows the forecast may use; ``predict(reference_date)`` returns a hubverse quantile table.
    """

    name = "flusight-baseline"

    def __init__(self, config: BaselineConfig | None = None):
        self.config = config

    def fit(self, targets: pd.DataFrame) -> FluSightBaseline:
        """Store, per location, the last observation, its date and the one-week differences."""
        cfg = self.config or BaselineConfig()
        if targets.empty:
            raise SmartcareError("the baseline needs at least one observed week per location")
        hist = targets
        if cfg.min_date is not None:
            hist = hist[hist["date"] >= pd.Timestamp(cfg.min_date)]
        wide = to_wide(hist)  # (T, L)
        self.residuals_: dict[str, np.ndarray] = {}
        self.last_: dict[str, tuple[pd.Timestamp, float]] = {}
        for loc in wide.columns:
            col = wide[loc]
            d = col.diff().to_numpy()  # only differences of consecutive weeks, NaN across gaps
            d = d[~np.isnan(d)]
            obs = col.dropna()
            if d.size == 0:
                raise SmartcareError(f"location {loc}: history too short for the baseline "
                                     "(needs two consecutive weeks)")
            self.residuals_[loc] = d
            self.last_[loc] = (obs.index[-1], float(obs.iloc[-1]))
        self.config_ = cfg
        return self

    def predict(self, reference_date, horizons=(0, 1, 2, 3), levels=hub.QUANTILES) -> pd.DataFrame:
        """Hubverse quantile table for every fitted location at ``horizons`` weeks after the reference date.

        Steps ahead are counted from each location's last observation, so a location one week late gets
        one more step of spread. Raises SmartcareError if called before ``fit``.
        """
        if not hasattr(self, "residuals_"):
            raise SmartcareError("FluSightBaseline.predict called before fit")
        cfg = self.config_
        ref = pd.Timestamp(reference_date)
        ref_seed = int((ref - pd.Timestamp("1970-01-01")).days)
        levels = np.asarray(levels, dtype=float)
        locs = sorted(self.residuals_)
        values = np.empty((len(locs), len(horizons), len(levels)))  # (L, H, Q)
        for i, loc in enumerate(locs):
            last_date, last = self.last_[loc]
            steps = [(ref + pd.Timedelta(weeks=int(h)) - last_date).days // 7 for h in horizons]
            if min(steps) < 1:
                raise SmartcareError(f"location {loc} has data on or after the reference date {ref:%Y-%m-%d}")
            rng = np.random.default_rng([cfg.seed, ref_seed, i])
            q = propagate_quantiles(self.residuals_[loc], last, max(steps), levels, cfg, rng)  # (S, Q)
            values[i] = q[np.asarray(steps) - 1]
        if cfg.round_quantiles:
            values = np.where(levels < 0.5, np.floor(values), np.ceil(values))
        return hub_frame(ref, locs, horizons, levels, values)
