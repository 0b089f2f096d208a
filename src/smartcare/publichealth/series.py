"""Count time series for surveillance: weekly or daily counts with dates, locations and a population.

A :class:`CountSeries` is one location's counts at regular epochs (weekly: MMWR epiweeks; daily; monthly),
validated on construction. Readers turn a CSV or Parquet table with columns
``date, observed[, population][, location]`` into one series per location.

Raises :class:`SeriesError` (a ``SmartcareError``) naming the problem: negative or non-integer counts,
missing values, duplicated, unsorted or irregular dates, or a history too short for a method.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from epiweeks import Week

from smartcare.core.errors import SmartcareError

_FREQ_BY_STEP = {7: 52, 1: 365}  # days between epochs -> periods per year (R sts@freq)


class SeriesError(SmartcareError):
    """A count series is unusable; the message names the column, row or rule at fault."""


@dataclass(frozen=True)
class CountSeries:
    """Counts of one location at regular epochs.

    Attributes:
        observed: counts, (T,) int64, non-negative.
        dates: epoch dates, (T,) ``datetime64[D]`` strictly increasing at a constant step, or None for
            an index-only series (R ``sts`` without ``epochAsDate``; weeks are then numbered 1..T).
        population: population (or population fraction) per epoch, (T,) float > 0, or None.
        location: location label ("" when the input had none).
        freq: epochs per year: 52 weekly, 365 daily, 12 monthly (R ``sts@freq``).
    """

    observed: np.ndarray
    dates: np.ndarray | None = None
    population: np.ndarray | None = None
    location: str = ""
    freq: int = 52

    def __post_init__(self) -> None:
        obs = _validate_counts(np.asarray(self.observed), self.location)
        object.__setattr__(self, "observed", obs)
        if self.dates is not None:
            dates = np.asarray(self.dates, dtype="datetime64[D]")
            _validate_dates(dates, self.location)
            if dates.shape != obs.shape:
                raise SeriesError(f"{self._where()}dates has {dates.size} entries but observed {obs.size}")
            object.__setattr__(self, "dates", dates)
        if self.population is not None:
            pop = np.asarray(self.population, dtype=float)
            if pop.shape != obs.shape:
                raise SeriesError(f"{self._where()}population has {pop.size} entries but observed {obs.size}")
            if not np.all(np.isfinite(pop)) or np.any(pop <= 0):
                raise SeriesError(f"{self._where()}population must be finite and > 0 (row {_first_bad(pop)})")
            object.__setattr__(self, "population", pop)
        if self.freq not in (12, 52, 365):
            raise SeriesError(f"freq must be 12, 52 or 365 epochs per year, got {self.freq}")

    def __len__(self) -> int:
        return int(self.observed.size)

    def _where(self) -> str:
        return f"location {self.location!r}: " if self.location else ""

    @cached_property
    def day_numbers(self) -> np.ndarray:
        """Dates as int64 days since 1970-01-01 (R's numeric Date), (T,). Raises if there are no dates."""
        if self.dates is None:
            raise SeriesError("this series has no dates")
        return self.dates.astype(np.int64)

    def population_or_ones(self) -> np.ndarray:
        """Population per epoch, (T,), ones when none was given (R's default populationFrac)."""
        return np.ones(len(self)) if self.population is None else self.population

    def epiweeks(self) -> pd.DataFrame:
        """MMWR epiweek (``year``, ``week``) of each date, (T, 2). Raises if the series has no dates."""
        if self.dates is None:
            raise SeriesError("this series has no dates, so it has no epiweeks")
        weeks = [Week.fromdate(pd.Timestamp(d).date()) for d in self.dates]
        return pd.DataFrame({"year": [w.year for w in weeks], "week": [w.week for w in weeks]})

    def require_history(self, needed: int, method: str) -> None:
        """Raise SeriesError if the series is shorter than ``needed`` epochs for ``method``."""
        if len(self) < needed:
            raise SeriesError(
                f"{self._where()}history too short for {method}: needs at least {needed} "
                f"{'weeks' if self.freq == 52 else 'epochs'}, got {len(self)}"
            )

    def index_of(self, date: str | np.datetime64) -> int:
        """0-based position of ``date``; raises if absent."""
        if self.dates is None:
            raise SeriesError("this series has no dates; give positions instead of dates")
        d = np.datetime64(pd.Timestamp(date).date(), "D")
        pos = int(np.searchsorted(self.dates, d))
        if pos >= len(self) or self.dates[pos] != d:
            raise SeriesError(f"{self._where()}date {d} is not an epoch of the series")
        return pos


def _first_bad(mask_src: np.ndarray) -> int:
    bad = ~np.isfinite(mask_src) | (mask_src <= 0)
    return int(np.flatnonzero(bad)[0]) + 1


def _validate_counts(obs: np.ndarray, location: str) -> np.ndarray:
    where = f"location {location!r}: " if location else ""
    if obs.ndim != 1 or obs.size == 0:
        raise SeriesError(f"{where}observed must be a non-empty 1-d sequence of counts")
    try:
        values = obs.astype(float)
    except (TypeError, ValueError) as err:
        raise SeriesError(f"{where}observed holds non-numeric values ({err})") from None
    nan = np.flatnonzero(~np.isfinite(values))
    if nan.size:
        raise SeriesError(f"{where}observed has {nan.size} missing/NaN value(s), first at row {nan[0] + 1}")
    neg = np.flatnonzero(values < 0)
    if neg.size:
        raise SeriesError(f"{where}observed has negative count {values[neg[0]]:g} at row {neg[0] + 1}")
    frac = np.flatnonzero(values != np.round(values))
    if frac.size:
        raise SeriesError(f"{where}observed has non-integer count {values[frac[0]]:g} at row {frac[0] + 1}")
    return values.astype(np.int64)


def _validate_dates(dates: np.ndarray, location: str) -> None:
    where = f"location {location!r}: " if location else ""
    if np.isnat(dates).any():
        row = int(np.flatnonzero(np.isnat(dates))[0]) + 1
        raise SeriesError(f"{where}date has a missing value at row {row}")
    step = np.diff(dates).astype(int)
    dup = np.flatnonzero(step == 0)
    if dup.size:
        raise SeriesError(f"{where}duplicated date {dates[dup[0]]} (rows {dup[0] + 1} and {dup[0] + 2})")
    back = np.flatnonzero(step < 0)
    if back.size:
        raise SeriesError(f"{where}dates are not sorted: {dates[back[0] + 1]} follows {dates[back[0]]}")
    if step.size and not np.all(step == step[0]) and not _monthly(dates):
        odd = int(np.flatnonzero(step != step[0])[0])
        raise SeriesError(
            f"{where}dates are not regularly spaced: step {step[odd]} days after {dates[odd]}, "
            f"expected {step[0]} (fill gaps with explicit zero counts)"
        )


def _monthly(dates: np.ndarray) -> bool:
    months = dates.astype("datetime64[M]")
    return bool(np.all(np.diff(months).astype(int) == 1))


def infer_freq(dates: np.ndarray) -> int:
    """Epochs per year from the date step: 7 days -> 52, 1 day -> 365, calendar months -> 12."""
    if dates.size < 2:
        return 52
    step = int((dates[1] - dates[0]).astype(int))
    if step in _FREQ_BY_STEP:
        return _FREQ_BY_STEP[step]
    if _monthly(dates):
        return 12
    raise SeriesError(f"cannot tell the epoch length from a step of {step} days; use weekly or daily counts")


def _epiweek_starts(years: pd.Series, weeks: pd.Series) -> list[str]:
    """Start (Sunday) of each MMWR epiweek ``(year, week)``; SeriesError names an invalid pair."""
    out = []
    for i, (y, w) in enumerate(zip(years, weeks, strict=True)):
        try:
            out.append(Week(int(y), int(w)).startdate().isoformat())
        except (TypeError, ValueError) as err:
            raise SeriesError(f"year/week {y!r}/{w!r} at row {i + 1} is not an MMWR epiweek ({err})") from None
    return out


def series_from_frame(df: pd.DataFrame) -> list[CountSeries]:
    """One CountSeries per location from a table ``date, observed[, population][, location]``.

    Instead of ``date`` the table may give MMWR epiweeks as ``year, week``; each becomes the
    week's first day (Sunday).

    Raises SeriesError for missing columns or any invalid value (see module docstring).
    """
    cols = {c.strip().lower(): c for c in df.columns}
    if "date" not in cols and "year" in cols and "week" in cols:
        df = df.assign(date=_epiweek_starts(df[cols["year"]], df[cols["week"]]))
        cols["date"] = "date"
    missing = [c for c in ("date", "observed") if c not in cols]
    if missing:
        raise SeriesError(
            f"input lacks column(s) {', '.join(missing)}; expected date, observed[, population][, location]"
        )
    df = df.rename(columns={v: k for k, v in cols.items()})
    dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise SeriesError(f"date {df['date'].iloc[row]!r} at row {row + 1} is not a date (use YYYY-MM-DD)")
    df = df.assign(date=dates.dt.normalize())
    observed = pd.to_numeric(df["observed"], errors="coerce")
    if observed.isna().any():
        row = int(np.flatnonzero(observed.isna().to_numpy())[0])
        bad = df["observed"].iloc[row]
        raise SeriesError(f"observed is missing or not a number at row {row + 1}: {bad!r}")
    df = df.assign(observed=observed)
    if "location" not in df:
        df = df.assign(location="")
    out = []
    for loc, part in df.groupby(df["location"].astype(str), sort=False):
        d = part["date"].to_numpy().astype("datetime64[D]")
        pop = part["population"].to_numpy(dtype=float) if "population" in part else None
        _validate_dates(d, loc)
        out.append(CountSeries(part["observed"].to_numpy(), d, pop, loc, infer_freq(d)))
    return out


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv or .parquet count table as is; SeriesError if missing, unreadable or empty."""
    path = Path(path)
    if not path.exists():
        raise SeriesError(f"input file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype={"location": str})
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SeriesError(f"cannot read {path}: {err}") from None
    if df.empty:
        raise SeriesError(f"{path} has no rows")
    return df


def read_series(path: str | Path) -> list[CountSeries]:
    """Read ``path`` (.csv, .parquet) into one CountSeries per location (see :func:`series_from_frame`)."""
    return series_from_frame(read_table(path))
