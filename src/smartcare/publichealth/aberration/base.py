"""What every aberration detector shares: the per-week result and the estimator contract.

Detectors follow scikit-learn's contract: ``__init__`` stores a frozen config, ``fit(series)`` validates and
stores the series (``series_``), ``predict(range_)`` judges the weeks in ``range_`` (0-based positions, or
None for the method's default range, as R's ``control$range``). ``detect(series, range_)`` does both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth.series import CountSeries, SeriesError


class NotFittedError(SmartcareError):
    """``predict`` was called before ``fit``."""


@dataclass(frozen=True)
class DetectionResult:
    """Per-week output of a detector over its judged range.

    Attributes:
        index: 0-based positions of the judged weeks, (R,).
        observed: counts, (R,).
        upperbound: alarm threshold, (R,); NaN where R reports NA.
        alarm: 1.0 alarm, 0.0 none, NaN where R reports NA; (R,).
        score: method score, (R,) (EARS: z-score; Farrington: exceedance score; CUSUM: the CUSUM statistic).
    """

    index: np.ndarray
    observed: np.ndarray
    upperbound: np.ndarray
    alarm: np.ndarray
    score: np.ndarray

    def to_frame(self, series: CountSeries) -> pd.DataFrame:
        """Table ``date, location, observed, upperbound, alarm, score`` (date is the 1-based week index
        when the series has no dates; alarm is a nullable integer)."""
        dates = (
            pd.to_datetime(series.dates[self.index]).strftime("%Y-%m-%d")
            if series.dates is not None
            else self.index + 1
        )
        alarm = pd.array(np.where(np.isnan(self.alarm), 0, self.alarm).astype(int), dtype="Int64")
        alarm[np.isnan(self.alarm)] = pd.NA
        return pd.DataFrame(
            {
                "date": dates,
                "location": series.location,
                "observed": self.observed,
                "upperbound": self.upperbound,
                "alarm": alarm,
                "score": self.score,
            }
        )


def resolve_range(
    series: CountSeries, start: str | None = None, end: str | None = None
) -> np.ndarray | None:
    """0-based positions from dates ``start``..``end`` (inclusive), or None when both are None.

    Raises SeriesError when a date falls outside the series or ``start`` is after ``end``.
    """
    if start is None and end is None:
        return None
    if series.dates is None:
        raise SeriesError("--from/--to need a series with dates")
    lo = 0 if start is None else int(np.searchsorted(series.dates, np.datetime64(start, "D"), side="left"))
    hi = len(series) - 1 if end is None else int(
        np.searchsorted(series.dates, np.datetime64(end, "D"), side="right") - 1
    )
    if lo > hi or lo >= len(series) or hi < 0:
        raise SeriesError(f"no week of the series lies between {start} and {end}")
    return np.arange(lo, hi + 1)


def check_range(
    series: CountSeries, range_: Sequence[int] | np.ndarray, first_allowed: int, method: str
) -> np.ndarray:
    """Sorted 0-based range as an int array; SeriesError if it needs history the series lacks."""
    rng = np.sort(np.asarray(range_, dtype=int))
    if rng.size == 0:
        raise SeriesError(f"{method}: the range of weeks to judge is empty")
    if rng[-1] >= len(series):
        raise SeriesError(
            f"{method}: range ends at week {rng[-1] + 1} but the series has {len(series)} weeks"
        )
    if rng[0] < first_allowed:
        raise SeriesError(
            f"history too short for {method}: the first judged week ({rng[0] + 1}) needs at least "
            f"{first_allowed} earlier weeks"
        )
    return rng


class Detector:
    """Base class: subclasses set ``config_class`` and implement ``_detect(series, range_)``."""

    config_class: type = object

    def __init__(self, config=None):
        self.config = config if config is not None else self.config_class()

    def fit(self, series: CountSeries) -> Detector:
        """Validate and store ``series``; returns self."""
        if not isinstance(series, CountSeries):
            raise SeriesError(f"expected a CountSeries, got {type(series).__name__}")
        self.series_ = series
        return self

    def predict(self, range_: Sequence[int] | np.ndarray | None = None) -> DetectionResult:
        """Judge the weeks at 0-based positions ``range_`` (None: the method's default range)."""
        if not hasattr(self, "series_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(series) first")
        return self._detect(self.series_, range_)

    def detect(
        self, series: CountSeries, range_: Sequence[int] | np.ndarray | None = None
    ) -> DetectionResult:
        """``fit(series).predict(range_)``."""
        return self.fit(series).predict(range_)

    def _detect(self, series: CountSeries, range_) -> DetectionResult:  # pragma: no cover - abstract
        raise NotImplementedError
