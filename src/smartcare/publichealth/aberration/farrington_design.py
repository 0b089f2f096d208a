"""Which past weeks enter the farringtonFlexible GLM for one judged week, and with which covariates.

Mirrors R surveillance 1.20.3 ``algo.farrington.referencetimepoints``, ``blocks`` and
``algo.farrington.data.glm``: reference weeks one, two, ... b years back (by calendar year and same
weekday for dated weekly series, by ``freq`` epochs otherwise), windows of +-w weeks around them, the
``noPeriods`` seasonal blocks between windows (Noufaily et al. 2013), minus the last
``pastWeeksNotIncluded`` weeks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from smartcare.publichealth.series import CountSeries, SeriesError


@dataclass
class Design:
    """GLM inputs for one judged week: n rows, p_full = 2 + (levels - 1) columns incl. the trend."""

    x: np.ndarray  # (n, p_full): intercept, wtime, seasonal-block dummies (treatment contrasts)
    y: np.ndarray  # (n,) counts
    offset: np.ndarray  # (n,) log population (zeros without population offset)
    x0: np.ndarray  # (p_full,) covariates of the judged week (block level = noPeriods)
    offset0: float  # offset of the judged week


def _minus_years(day: dt.date, years: int) -> dt.date:
    """R ``seq(day, by = "-1 year")`` element: same month/day, overflow rolls forward (29 Feb -> 1 Mar)."""
    return dt.date(day.year - years, day.month, 1) + dt.timedelta(days=day.day - 1)


def reference_positions(series: CountSeries, k: int, b: int) -> np.ndarray:
    """0-based positions of the judged week k and the same week 1..b years back, (b+1,) descending.

    Raises SeriesError when a reference week is not in the series (R: "Some reference time points did
    not exist; decrease 'b' or postpone 'range'").
    """
    if series.dates is None:
        pos = k - series.freq * np.arange(b + 1)
        if pos[-1] < 0:
            raise SeriesError(
                f"history too short for farringtonFlexible: week {k + 1} needs {b} years "
                f"({b * series.freq} weeks) of history; decrease b or judge later weeks"
            )
        return pos
    day = dt.date.fromisoformat(str(series.dates[k]))
    refs = []
    for j in range(b + 1):
        ref = _minus_years(day, j)
        if series.freq == 52:
            # R: the same weekday as the judged week, nearest to the anniversary
            shift = (ref.isoweekday() % 7) - (day.isoweekday() % 7)
            a = ref - dt.timedelta(days=shift)
            alt = a + dt.timedelta(days=-7 if a > ref else 7)
            ref = a if abs((a - ref).days) <= abs((alt - ref).days) else alt
        refs.append(np.datetime64(ref, "D"))
    refs = np.array(refs, dtype="datetime64[D]")
    pos = np.searchsorted(series.dates, refs)
    ok = (pos < len(series)) & (series.dates[np.minimum(pos, len(series) - 1)] == refs)
    if not ok.all():
        raise SeriesError(
            f"history too short for farringtonFlexible: reference week {refs[~ok][0]} of judged week "
            f"{series.dates[k]} is not in the series; decrease b or judge later weeks"
        )
    return pos


def block_levels(ref_pos: np.ndarray, n_time: int, w: int, p: int) -> np.ndarray:
    """Seasonal block of every week, (n_time,) int, 0 = not used (R ``blocks``).

    Windows around the judged and reference weeks get level p; with p > 1 the weeks between two
    windows are split into p-1 blocks, the remainder going to the first blocks.
    """
    levels = np.zeros(n_time, dtype=int)
    now = ref_pos[0]
    if ref_pos[-1] - w < 0:
        raise SeriesError(f"history too short for farringtonFlexible: the oldest window starts before week 1 (w={w})")
    levels[now - w : now + 1] = p
    for i in range(1, ref_pos.size):
        ref = ref_pos[i]
        levels[ref - w : ref + w + 1] = p
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


def build_design(
    series: CountSeries,
    k: int,
    b: int,
    w: int,
    no_periods: int,
    past_weeks_not_included: int,
    population_offset: bool,
) -> Design:
    """GLM inputs of farringtonFlexible for the judged 0-based week ``k`` (R ``algo.farrington.data.glm``)."""
    ref_pos = reference_positions(series, k, b)
    levels = block_levels(ref_pos, len(series), w, no_periods)
    used = levels.copy()
    used[max(0, k - past_weeks_not_included) : k + 1] = 0
    rows = np.flatnonzero(used)
    if series.dates is None:
        wtime = rows + 1.0
        wtime0 = k + 1.0
    else:
        step = float((series.dates[1] - series.dates[0]).astype(int))
        origin = series.dates[rows[0]]
        wtime = (series.dates[rows] - origin).astype(int) / step
        wtime0 = float((series.dates[k] - origin).astype(int)) / step
    lv = levels[rows]
    present = np.unique(lv)
    n, extra = rows.size, present[1:]
    x = np.empty((n, 2 + extra.size))  # (n, p_full)
    x[:, 0] = 1.0
    x[:, 1] = wtime
    x[:, 2:] = lv[:, None] == extra[None, :]
    x0 = np.concatenate([[1.0, wtime0], (extra == no_periods).astype(float)])
    if population_offset:
        logpop = np.log(series.population_or_ones())
        offset, offset0 = logpop[rows], float(logpop[k])
    else:
        offset, offset0 = np.zeros(n), 0.0
    return Design(x, series.observed[rows].astype(float), offset, x0, offset0)
