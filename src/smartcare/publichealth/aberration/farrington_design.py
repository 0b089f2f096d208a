"""Which past weeks enter the farringtonFlexible GLM for one judged week, and with which covariates.

Mirrors R surveillance 1.20.3 ``algo.farrington.referencetimepoints``, ``blocks`` and
``algo.farrington.data.glm``: reference weeks one, two, ... b years back (by calendar year and same
weekday for dated weekly series, by ``freq`` epochs otherwise), windows of +-w weeks around them, the
``noPeriods`` seasonal blocks between windows (Noufaily et al. 2013), minus the last
``pastWeeksNotIncluded`` weeks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcare.publichealth.series import CountSeries, SeriesError


@dataclass
class Design:
    """GLM inputs for one judged week: n rows of ``log mu = a + c*wtime + g[level] + offset``."""

    wtime: np.ndarray  # (n,) trend covariate (R's wtime)
    level: np.ndarray  # (n,) seasonal-block code 0..n_levels-1, 0 = R's reference (lowest) level
    n_levels: int  # number of block levels present
    y: np.ndarray  # (n,) counts
    offset: np.ndarray  # (n,) log population (zeros without population offset)
    wtime0: float  # wtime of the judged week
    level0: int  # code of the judged week's block (noPeriods)
    offset0: float  # offset of the judged week


def reference_positions(series: CountSeries, ks: np.ndarray, b: int) -> np.ndarray:
    """0-based positions of each judged week k and the same week 1..b years back, (len(ks), b+1).

    Undated series step back ``freq`` epochs; dated series step back calendar years (R
    ``seq(by = "-1 year")``: 29 Feb -> 1 Mar) and, when weekly, move to the same weekday as the judged
    week, nearest to the anniversary (R ``algo.farrington.referencetimepoints``).
    Raises SeriesError when a reference week is not in the series.
    """
    ks = np.asarray(ks, dtype=int)
    back = np.arange(b + 1)
    if series.dates is None:
        pos = ks[:, None] - series.freq * back[None, :]
        if pos.size and pos.min() < 0:
            bad = int(ks[(pos < 0).any(axis=1)][0])
            raise SeriesError(
                f"history too short for farringtonFlexible: week {bad + 1} needs {b} years "
                f"({b * series.freq} weeks) of history; decrease b or judge later weeks"
            )
        return pos
    day = series.dates[ks]  # (K,) datetime64[D]
    month = day.astype("datetime64[M]")
    in_month = (day - month.astype("datetime64[D]")).astype(np.int64)  # day of month - 1
    ref_month = month[:, None] - 12 * back[None, :]  # (K, b+1) same month, j years back
    ref = ref_month.astype("datetime64[D]").astype(np.int64) + in_month[:, None]  # overflow rolls on
    if series.freq == 52:
        weekday = lambda d: (d + 4) % 7  # noqa: E731 - R format(, "%w"): 1970-01-01 was a Thursday
        shift = weekday(ref) - weekday(day.astype(np.int64))[:, None]
        a = ref - shift
        alt = a + np.where(a > ref, -7, 7)
        ref = np.where(np.abs(a - ref) <= np.abs(alt - ref), a, alt)
    days = series.day_numbers
    pos = np.searchsorted(days, ref)
    ok = (pos < len(series)) & (days[np.minimum(pos, len(series) - 1)] == ref)
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        missing = np.datetime64(int(ref[r, c]), "D")
        raise SeriesError(
            f"history too short for farringtonFlexible: reference week {missing} of judged week "
            f"{series.dates[ks[r]]} is not in the series; decrease b or judge later weeks"
        )
    return pos


def block_levels(ref_pos: np.ndarray, n_time: int, w: int, p: int) -> np.ndarray:
    """Seasonal block of every week, (n_time,) int, 0 = not used (R ``blocks``).

    Windows around the judged and reference weeks get level p; with p > 1 the weeks between two
    windows are split into p-1 blocks, the remainder going to the first blocks.
    """
    levels = np.zeros(n_time, dtype=int)
    now = ref_pos[0]
    if ref_pos[-1] - w < -1:  # R silently drops index 0 (one week before the start), not more
        raise SeriesError(
            f"history too short for farringtonFlexible: the oldest window starts before week 1 (w={w})"
        )
    levels[now - w : now + 1] = p
    for i in range(1, ref_pos.size):
        ref = ref_pos[i]
        levels[max(ref - w, 0) : ref + w + 1] = p
        if p == 1:
            continue
        period = ref_pos[i - 1] - 2 * w - 1 - ref
        if period < p - (2 * w + 1):
            raise SeriesError("farringtonFlexible: noPeriods is too big for the gap between windows")
        lengths = np.full(p - 1, period // (p - 1))
        lengths[: period % (p - 1)] += 1
        edges = ref + w + 1 + np.concatenate([[0], np.cumsum(lengths)])
        for j in range(1, p):
            lo, hi = edges[j - 1], edges[j] - 1
            # R's lo:hi counts down when hi < lo, so an empty block still marks weeks hi and lo
            idx = np.arange(lo, hi + 1) if hi >= lo else np.array([lo, hi])
            levels[idx] = j
    return levels


def _pattern(gaps: tuple[int, ...], w: int, p: int, pwni: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (as lags behind the judged week, oldest first) and their block levels for reference gaps."""
    ref_lag = np.array(gaps)  # (b+1,) lags of the judged and reference weeks, 0 first
    span = ref_lag[-1] + w + 1
    levels = block_levels(span - 1 - ref_lag, span, w, p)  # positions relative to the oldest week
    used = levels.copy()
    used[max(0, span - 1 - pwni) :] = 0
    rows = np.flatnonzero(used)
    return span - 1 - rows, levels[rows]


def build_designs(
    series: CountSeries,
    ks: np.ndarray,
    b: int,
    w: int,
    no_periods: int,
    past_weeks_not_included: int,
    population_offset: bool,
) -> list[Design]:
    """GLM inputs of farringtonFlexible for each judged 0-based week in ``ks`` (R
    ``algo.farrington.data.glm``); week patterns are cached since most weeks share the same gaps."""
    ref_pos = reference_positions(series, ks, b)  # (K, b+1)
    if series.dates is not None:
        days = series.day_numbers
        step = float(days[1] - days[0])
    logpop = np.log(series.population_or_ones()) if population_offset else None
    cache: dict[tuple[int, ...], tuple[np.ndarray, ...]] = {}
    out = []
    for k, refs in zip(ks, ref_pos, strict=True):
        gaps = tuple(int(k - r) for r in refs)
        if gaps not in cache:
            cache[gaps] = _pattern(gaps, w, no_periods, past_weeks_not_included)
            lags, lv = cache[gaps]
            cache[gaps] = (lags, lv, *np.unique(lv, return_inverse=True))
        lags, lv, present, code = cache[gaps]
        rows = k - lags
        if rows[0] < 0:
            if rows[0] < -1:  # R silently drops index 0 (one week before the start), not more
                raise SeriesError(
                    f"history too short for farringtonFlexible: the oldest window of week {k + 1} starts "
                    f"before week 1 (w={w})"
                )
            rows, lv = rows[1:], lv[1:]
            present, code = np.unique(lv, return_inverse=True)
        if series.dates is None:
            wtime, wtime0 = rows + 1.0, k + 1.0
        else:
            wtime, wtime0 = (days[rows] - days[rows[0]]) / step, float(days[k] - days[rows[0]]) / step
        offset = logpop[rows] if logpop is not None else np.zeros(rows.size)
        offset0 = float(logpop[k]) if logpop is not None else 0.0
        y = series.observed[rows].astype(float)
        out.append(Design(wtime, code, present.size, y, offset, wtime0,
                          int(np.searchsorted(present, no_periods)), offset0))
    return out
