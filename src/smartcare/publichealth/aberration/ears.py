"""EARS C1, C2 and C3 (Hutwagner et al. 2003; Fricker et al. 2008), as R surveillance 1.20.3 ``earsC``.

C1 compares week t with the mean and sd of weeks t-7..t-1; C2 with weeks t-9..t-3; C3 sums the
positive parts of the last three C2 statistics. Defaults follow R: ``baseline = 7``, ``minSigma = 0``,
``alpha = 0.001`` for C1/C2 and ``0.025`` for C3 when ``alpha`` is not given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

from smartcare.publichealth.aberration.base import DetectionResult, Detector, check_range
from smartcare.publichealth.series import CountSeries, SeriesError


@dataclass(frozen=True)
class EarsConfig:
    """Control of :class:`EarsC` (R ``earsC(control=...)``)."""

    method: str = "C1"  # "C1", "C2" or "C3"
    baseline: int = 7  # number of past weeks in the reference window (R: >= 3)
    min_sigma: float = 0.0  # floor on the reference sd (R minSigma)
    alpha: float | None = None  # one-sided level; None: 0.001 for C1/C2, 0.025 for C3 (R's NULL)

    def __post_init__(self) -> None:
        if self.method not in ("C1", "C2", "C3"):
            raise SeriesError(f"EARS method must be C1, C2 or C3, got {self.method!r}")
        if self.baseline < 3:
            raise SeriesError("EARS baseline must be at least 3 weeks")
        if self.min_sigma < 0:
            raise SeriesError("EARS min_sigma must be >= 0")

    @property
    def z_alpha(self) -> float:
        alpha = self.alpha if self.alpha is not None else (0.025 if self.method == "C3" else 0.001)
        return float(norm.ppf(1 - alpha))

    @property
    def max_lag(self) -> int:
        return self.baseline + {"C1": 0, "C2": 2, "C3": 4}[self.method]


def _ref_stats(x: np.ndarray, t: np.ndarray, first_lag: int, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd of x[t-first_lag-baseline+1 .. t-first_lag] for each t, each (len(t),)."""
    win = sliding_window_view(x, baseline)  # (T-baseline+1, baseline); row i = x[i:i+baseline]
    rows = win[t - first_lag - baseline + 1]  # (len(t), baseline)
    return rows.mean(axis=1), rows.std(axis=1, ddof=1)


def ears_c(series: CountSeries, config: EarsConfig, range_=None) -> DetectionResult:
    """Run EARS ``config.method`` on ``series`` over 0-based ``range_`` (None: all weeks with history).

    Returns per-week upperbound, alarm (observed > upperbound; NaN where the bound is NaN) and the
    C-statistic score. Raises SeriesError if the range needs more history than the series has.
    """
    cfg, x = config, series.observed.astype(float)
    if range_ is None:
        range_ = np.arange(cfg.max_lag, len(series))
    rng = check_range(series, range_, cfg.max_lag, f"EARS {cfg.method}")
    z = cfg.z_alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        if cfg.method in ("C1", "C2"):
            mean, sd = _ref_stats(x, rng, 1 if cfg.method == "C1" else 3, cfg.baseline)
            sigma = np.maximum(sd, cfg.min_sigma)
            upper = mean + z * sigma
            score = (x[rng] - mean) / sigma
        else:
            rng2 = np.arange(rng[0] - 2, rng[-1] + 1)
            mean, sd = _ref_stats(x, rng2, 3, cfg.baseline)
            sigma = np.maximum(sd, cfg.min_sigma)
            c2 = (x[rng2] - mean) / sigma
            pos = rng - rng2[0]
            lag2 = np.maximum(0.0, c2[pos - 2] - 1)
            lag1 = np.maximum(0.0, c2[pos - 1] - 1)
            upper = np.maximum(0.0, x[rng] + sigma[pos] * (z - (lag2 + lag1)))
            score = np.maximum(0.0, c2[pos] - 1) + lag1 + lag2
    alarm = np.where(np.isnan(upper), np.nan, (x[rng] > upper).astype(float))
    return DetectionResult(rng, series.observed[rng], upper, alarm, score)


class EarsC(Detector):
    """EARS C1/C2/C3 detector (estimator wrapper of :func:`ears_c`)."""

    config_class = EarsConfig

    def _detect(self, series: CountSeries, range_) -> DetectionResult:
        return ears_c(series, self.config, range_)
