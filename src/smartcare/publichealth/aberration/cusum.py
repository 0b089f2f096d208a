"""Poisson CUSUM (Rossi et al. 1999) as R surveillance 1.20.3 ``cusum`` / ``algo.cusum``.

The expected count ``m`` is the mean of all weeks before the judged range (R ``m = NULL``); the standardised
observation ``(x - m) / sqrt(m)`` (``trans = "standard"``) or Rossi's ``z3`` (``"rossi"``) feeds
``C_t = max(0, C_{t-1} + z_t - k)``, alarm when ``C_t >= h``. The upper bound is the smallest count that
would alarm, ``ceiling(sqrt(m) (h + k - C_{t-1}) + m)`` for the standard transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcare.publichealth.aberration.base import DetectionResult, Detector, check_range
from smartcare.publichealth.series import CountSeries, SeriesError


@dataclass(frozen=True)
class CusumConfig:
    """Control of :class:`Cusum` (R ``cusum(control=...)``)."""

    k: float = 1.04  # reference value
    h: float = 2.26  # decision interval
    m: float | None = None  # expected count; None: mean of the weeks before the range
    trans: str = "standard"  # "standard" (z1) or "rossi" (z3)

    def __post_init__(self) -> None:
        if self.trans not in ("standard", "rossi"):
            raise SeriesError(f"CUSUM trans must be 'standard' or 'rossi', got {self.trans!r}")


def cusum(series: CountSeries, config: CusumConfig, range_=None) -> DetectionResult:
    """Run the CUSUM over 0-based ``range_`` (None: the last 104 weeks, or all but the first week).

    Returns per-week upperbound, alarm and the CUSUM statistic as score. Raises SeriesError when no week
    precedes the range (``m`` cannot be estimated) or the estimated mean is 0.
    """
    x_all = series.observed.astype(float)
    if range_ is None:
        range_ = np.arange(max(1, len(series) - 104), len(series))
    need = 1 if config.m is None else 0
    rng = check_range(series, range_, need, "CUSUM")
    m = float(x_all[: rng[0]].mean()) if config.m is None else float(config.m)
    if m <= 0:
        raise SeriesError("CUSUM: the expected count m is 0 (no cases before the judged range)")
    x = x_all[rng]
    k, h = config.k, config.h
    if config.trans == "standard":
        z = (x - m) / np.sqrt(m)
    else:
        z = (x - 3 * m + 2 * np.sqrt(x * m)) / (2 * np.sqrt(m))
    stat = np.zeros(rng.size + 1)
    for t in range(rng.size):  # sequential by nature; R loops the same way
        stat[t + 1] = max(0.0, stat[t] + (z[t] - k))
    prev = stat[:-1]
    if config.trans == "standard":
        upper = np.ceil(np.sqrt(m) * (h + k - prev) + m)
    else:
        sm = np.sqrt(m)
        with np.errstate(invalid="ignore"):
            upper = 2 * h * sm + 2 * k * sm - 2 * prev * sm + 5 * m - 2 * np.sqrt(
                4 * m**2 + 2 * m**1.5 * h + 2 * m**1.5 * k - 2 * m**1.5 * prev
            )
    upper = np.where(np.isnan(upper) | (upper < 0), 0.0, upper)
    alarm = (stat[1:] >= h).astype(float)
    return DetectionResult(rng, series.observed[rng], upper, alarm, stat[1:])


class Cusum(Detector):
    """CUSUM detector (estimator wrapper of :func:`cusum`)."""

    config_class = CusumConfig

    def _detect(self, series: CountSeries, range_) -> DetectionResult:
        return cusum(series, self.config, range_)
