"""Detectors registered by name, and detection over a table of one or more locations.

Names are those of the command line: ``ears-c1``, ``ears-c2``, ``ears-c3``, ``farrington``
(farringtonFlexible defaults), ``farrington-noufaily`` (Noufaily et al. 2013 settings) and ``cusum``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from smartcare.publichealth.aberration.base import DetectionResult, Detector, resolve_range
from smartcare.publichealth.aberration.cusum import Cusum, CusumConfig
from smartcare.publichealth.aberration.ears import EarsC, EarsConfig
from smartcare.publichealth.aberration.farrington import (
    FarringtonConfig,
    FarringtonFlexible,
    farrington_flexible_many,
)
from smartcare.publichealth.series import CountSeries, SeriesError, series_from_frame

DETECTORS: dict[str, Callable[[], Detector]] = {
    "ears-c1": lambda: EarsC(EarsConfig(method="C1")),
    "ears-c2": lambda: EarsC(EarsConfig(method="C2")),
    "ears-c3": lambda: EarsC(EarsConfig(method="C3")),
    "farrington": lambda: FarringtonFlexible(FarringtonConfig()),
    "farrington-noufaily": lambda: FarringtonFlexible(FarringtonConfig.noufaily()),
    "cusum": lambda: Cusum(CusumConfig()),
}

OUTPUT_COLUMNS = ["date", "location", "observed", "upperbound", "alarm", "score"]


def make_detector(method: str) -> Detector:
    """A fresh detector for a registered ``method`` name; SeriesError names the valid ones otherwise."""
    try:
        return DETECTORS[method]()
    except KeyError:
        raise SeriesError(f"unknown method {method!r}; choose one of {', '.join(DETECTORS)}") from None


def detect_series(
    series: list[CountSeries], method: str, start: str | None = None, end: str | None = None
) -> list[DetectionResult]:
    """Run ``method`` on each series over the weeks ``start``..``end`` (dates, inclusive; None: the
    method's default range). Earlier weeks still serve as history, as R's ``control$range``."""
    detector = make_detector(method)
    ranges = [resolve_range(s, start, end) for s in series]
    if isinstance(detector, FarringtonFlexible):  # one batched GLM pass over all locations
        return farrington_flexible_many(series, ranges, detector.config)
    return [detector.detect(s, r) for s, r in zip(series, ranges, strict=True)]


def detect_frame(
    table: pd.DataFrame, method: str, start: str | None = None, end: str | None = None
) -> tuple[pd.DataFrame, list[CountSeries]]:
    """Detection on a table ``date, observed[, population][, location]``.

    Returns the alarms table (columns :data:`OUTPUT_COLUMNS`, one row per location and judged week) and
    the parsed series. Raises SeriesError (a SmartcareError) for invalid input or too short a history.
    """
    series = series_from_frame(table)
    results = detect_series(series, method, start, end)
    frames = [r.to_frame(s) for r, s in zip(results, series, strict=True)]
    out = pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]
    out["upperbound"] = out["upperbound"].astype(float)
    out["score"] = np.round(out["score"].astype(float), 12)
    return out, series
