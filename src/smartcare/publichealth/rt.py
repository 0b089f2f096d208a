"""Time-varying reproduction number Rt (Cori et al. 2013), as R ``EpiEstim`` 2.2-4 ``estimate_R``.

Cori A, Ferguson NM, Fraser C, Cauchemez S. A new framework and software to estimate time-varying
reproduction numbers during epidemics. Am J Epidemiol 2013;178:1505-12.

For a window [t_s, t_e] (days, 1-based as in EpiEstim) and a Gamma(a, b) prior (shape a = (mean/sd)^2,
scale b = sd^2/mean), the posterior of R is Gamma with

    shape = a + sum_{t=t_s}^{t_e} I_local(t),   scale = 1 / (1/b + sum_{t=t_s}^{t_e} Lambda(t)),
    Lambda(t) = sum_{s=1}^{t-1} w(s) * (I_local(t - s) + I_imported(t - s)),

where w is the discrete serial-interval (SI) distribution. Cases of the first day are always imported.
Windows ending on or before the mean of the SI distribution get no estimate (NaN), as in EpiEstim.
Methods: ``parametric_si`` (SI = gamma with the given mean and sd, discretised as EpiEstim ``discr_si``)
and ``non_parametric_si`` (SI given as a vector, w[0] = 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammainc, gammaincinv

from smartcare.core.errors import SmartcareError

METHODS = ("parametric_si", "non_parametric_si")
#: Posterior quantile levels reported by EpiEstim, and the column names used for them.
RT_QUANTILES: tuple[float, ...] = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)
RT_COLUMNS: tuple[str, ...] = ("t_start", "t_end", "mean", "std", *(f"q{q:g}" for q in RT_QUANTILES))
SI_SUM_TOL = 0.01  # |sum(si_distr) - 1| allowed, as EpiEstim's check_si_distr


class RtWarning(UserWarning):
    """Estimation runs but its premise is weak (e.g. too few cases for the requested posterior CV)."""


@dataclass(frozen=True)
class Incidence:
    """Daily incidence split into local and imported cases (first-day cases counted as imported)."""

    local: np.ndarray  # (T,) local cases
    imported: np.ndarray  # (T,) imported cases
    dates: pd.DatetimeIndex | None = None  # (T,) optional calendar dates

    @property
    def total(self) -> np.ndarray:
        return self.local + self.imported


def _counts(values, name: str) -> np.ndarray:
    arr = np.asarray(pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce"), dtype=float)
    if np.isnan(arr).any():
        i = int(np.flatnonzero(np.isnan(arr))[0])
        raise SmartcareError(f"{name} has a missing or non-numeric value at day {i + 1}")
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise SmartcareError(f"{name} must be non-negative; day {i + 1} has {arr[i]:g}")
    if not np.all(np.mod(arr, 1) == 0):
        i = int(np.flatnonzero(np.mod(arr, 1) != 0)[0])
        raise SmartcareError(f"{name} must hold whole case counts; day {i + 1} has {arr[i]:g}")
    return arr


def _date_column(df: pd.DataFrame) -> str | None:
    for col in df.columns:
        if str(col).lower() in ("dates", "date") or str(col).lower().endswith("dates"):
            return col
    return None


def make_incidence(incid, local=None, imported=None, dates=None) -> Incidence:
    """Build an ``Incidence`` from a vector of counts, a DataFrame, or separate local/imported vectors.

    A DataFrame may hold ``I`` (or ``incidence``/``cases``/``count``/``observed``/``value``, or its only
    count column) or both ``local`` and ``imported``, plus an optional date column (``dates``, ``date`` or
    ``*dates``).
    Raises SmartcareError for missing, negative, non-integer counts or unsorted dates. As EpiEstim, local
    cases on the first day are moved to imported (with an RtWarning).
    """
    if isinstance(incid, pd.DataFrame):
        df = incid
        dcol = _date_column(df)
        if dates is None and dcol is not None:
            dates = df[dcol]
        cols = {str(c).lower(): c for c in df.columns}
        if "local" in cols and "imported" in cols:
            local, imported = df[cols["local"]], df[cols["imported"]]
            incid = None
        else:
            names = ("i", "incidence", "cases", "count", "observed", "value")
            pick = next((cols[k] for k in names if k in cols), None)
            if pick is None:
                rest = [c for c in df.columns if c != dcol and str(c).lower() != "t"]
                if len(rest) != 1:
                    raise SmartcareError(
                        f"incidence table needs a column I (or local and imported); found {list(df.columns)}"
                    )
                pick = rest[0]
            incid = df[pick]
    if incid is not None:
        total = _counts(incid, "incidence")
        local_arr, imported_arr = total.copy(), np.zeros_like(total)
    else:
        if local is None or imported is None:
            raise SmartcareError("give an incidence vector, or both local and imported vectors")
        local_arr, imported_arr = _counts(local, "local incidence"), _counts(imported, "imported incidence")
        if local_arr.shape != imported_arr.shape:
            raise SmartcareError("local and imported incidence must have the same length")
    if local_arr.size == 0:
        raise SmartcareError("incidence is empty")
    if local_arr[0] > 0:
        if incid is None:
            warnings.warn(
                "local cases on the first day are counted as imported (EpiEstim convention)", RtWarning,
                stacklevel=2,
            )
        imported_arr[0] += local_arr[0]
        local_arr[0] = 0.0
    parsed = None
    if dates is not None:
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates).to_numpy(), format="mixed"))
        except (ValueError, TypeError) as err:
            raise SmartcareError(f"incidence dates cannot be parsed: {err}") from err
        if len(parsed) != local_arr.size:
            raise SmartcareError("incidence dates and counts differ in length")
        if not parsed.is_monotonic_increasing or parsed.has_duplicates:
            raise SmartcareError("incidence dates must be strictly increasing (sorted, no duplicates)")
    return Incidence(local_arr, imported_arr, parsed)


def discr_si(k: Sequence[int] | np.ndarray, mean_si: float, std_si: float) -> np.ndarray:
    """Discretised gamma serial interval, as EpiEstim ``discr_si`` (Cori et al. 2013, Web Appendix 11).

    The SI minus 1 is gamma with the given mean - 1 and sd; w(k) is the probability of k days under
    linear interpolation of the CDF. Args: ``k`` integer days (>= 0), ``mean_si`` > 1, ``std_si`` > 0.
    Returns w(k) (same shape as ``k``). Raises SmartcareError for out-of-range parameters.
    """
    if not (np.isfinite(mean_si) and mean_si > 1):
        raise SmartcareError(f"the parametric SI needs a mean greater than 1 day; got {mean_si}")
    if not (np.isfinite(std_si) and std_si > 0):
        raise SmartcareError(f"the parametric SI needs a positive standard deviation; got {std_si}")
    k = np.asarray(k, dtype=float)
    a = ((mean_si - 1) / std_si) ** 2
    b = std_si**2 / (mean_si - 1)

    def cdf(x: np.ndarray, shape: float) -> np.ndarray:
        return np.where(x > 0, gammainc(shape, np.maximum(x, 0) / b), 0.0)

    res = k * cdf(k, a) + (k - 2) * cdf(k - 2, a) - 2 * (k - 1) * cdf(k - 1, a)
    res = res + a * b * (2 * cdf(k - 1, a + 1) - cdf(k - 2, a + 1) - cdf(k, a + 1))
    return np.maximum(0.0, res)


def check_si_distr(si_distr) -> np.ndarray:
    """Validate a discrete SI distribution (w[0] = 0, w >= 0, sum 1 within 0.01); return it as float."""
    w = np.asarray(si_distr, dtype=float).ravel()
    if w.size < 2:
        raise SmartcareError("the SI distribution needs at least two values (w[0] = 0 and w[1])")
    if np.isnan(w).any():
        raise SmartcareError("the SI distribution has missing values")
    if (w < 0).any():
        raise SmartcareError("the SI distribution must be non-negative")
    if w[0] != 0:
        raise SmartcareError(f"the SI distribution must give P(SI = 0) = 0; si_distr[0] = {w[0]:g}")
    if abs(w.sum() - 1) > SI_SUM_TOL:
        raise SmartcareError(f"the SI distribution must sum to 1; it sums to {w.sum():.6g}")
    return w


def si_distribution(
    method: str, n_days: int, mean_si: float | None = None, std_si: float | None = None, si_distr=None
) -> np.ndarray:
    """The SI distribution EpiEstim uses for ``n_days`` of incidence: length max(len, n_days + 1), 0-padded.

    ``parametric_si``: ``discr_si(0..n_days-1, mean_si, std_si)`` then a trailing 0;
    ``non_parametric_si``: ``si_distr`` checked by ``check_si_distr`` and padded with zeros.
    """
    if method == "parametric_si":
        if mean_si is None or std_si is None:
            raise SmartcareError("method parametric_si needs the SI mean and standard deviation")
        w = discr_si(np.arange(n_days), mean_si, std_si)
    elif method == "non_parametric_si":
        if si_distr is None:
            raise SmartcareError("method non_parametric_si needs an SI distribution (si_distr)")
        w = check_si_distr(si_distr)
    else:
        raise SmartcareError(f"unknown method {method!r}; use one of {METHODS}")
    if w.size < n_days + 1:
        w = np.concatenate([w, np.zeros(n_days + 1 - w.size)])
    return w


def sliding_windows(n_days: int, window: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """EpiEstim's default windows: t_start = 2..T-window+1, t_end = t_start + window - 1 (1-based days)."""
    if window < 1 or int(window) != window:
        raise SmartcareError(f"the window must be a positive whole number of days; got {window}")
    if n_days < window + 1:
        raise SmartcareError(
            f"incidence has {n_days} days; a {window}-day window from day 2 needs at least {window + 1}"
        )
    t_start = np.arange(2, n_days - window + 2)
    return t_start, t_start + window - 1


def check_windows(t_start, t_end, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate 1-based windows (2 <= t_start <= t_end <= T), as EpiEstim ``check_times``."""
    ts, te = np.asarray(t_start).ravel(), np.asarray(t_end).ravel()
    if ts.size == 0 or ts.size != te.size:
        raise SmartcareError("t_start and t_end must be non-empty and of the same length")
    if not (np.all(np.mod(ts, 1) == 0) and np.all(np.mod(te, 1) == 0)):
        raise SmartcareError("t_start and t_end must be whole days")
    ts, te = ts.astype(int), te.astype(int)
    if (ts < 2).any():
        raise SmartcareError("t_start must be at least 2 (day 1 has no infectivity: its cases are imported)")
    if (te > n_days).any():
        raise SmartcareError(f"t_end must be at most the number of days, {n_days}; got {te.max()}")
    if (ts > te).any():
        i = int(np.flatnonzero(ts > te)[0])
        raise SmartcareError(f"t_start must not exceed t_end (window {i + 1}: {ts[i]} > {te[i]})")
    return ts, te


def overall_infectivity(incidence: Incidence, si: np.ndarray) -> np.ndarray:
    """Lambda(t) = sum_{s>=1} w(s) I(t-s) for t = 1..T (index 0 is day 1 and is NaN)."""
    total = incidence.total
    n = total.size
    lam = np.convolve(total, si[:n])[:n]  # (T,)
    lam[0] = np.nan
    return lam


def estimate_r(
    incidence,
    *,
    method: str = "parametric_si",
    mean_si: float | None = None,
    std_si: float | None = None,
    si_distr=None,
    t_start=None,
    t_end=None,
    window: int = 7,
    mean_prior: float = 5.0,
    std_prior: float = 5.0,
    cv_posterior: float = 0.3,
) -> pd.DataFrame:
    """Estimate Rt on sliding (or given) windows, as EpiEstim 2.2-4 ``estimate_R`` (Cori et al. 2013).

    Args:
        incidence: an ``Incidence``, a vector of daily counts, or a DataFrame (see ``make_incidence``).
        method: "parametric_si" (needs ``mean_si`` > 1, ``std_si`` > 0) or "non_parametric_si"
            (needs ``si_distr`` with si_distr[0] = 0, summing to 1).
        t_start, t_end: 1-based window bounds; default weekly sliding windows of ``window`` days.
        mean_prior, std_prior: Gamma prior on R (EpiEstim defaults 5, 5).
        cv_posterior: warn (RtWarning) when the first window has too few cases for this posterior CV.
    Returns:
        DataFrame with ``t_start, t_end`` (and ``date_start, date_end`` when dates are known), ``mean,
        std, q0.025, q0.05, q0.25, q0.5, q0.75, q0.95, q0.975``; NaN where the window ends on or before
        the mean SI.
    Raises:
        SmartcareError: bad incidence, SI distribution, windows or prior.
    """
    inc = incidence if isinstance(incidence, Incidence) else make_incidence(incidence)
    n = inc.local.size
    for name, v in (("mean_prior", mean_prior), ("std_prior", std_prior), ("cv_posterior", cv_posterior)):
        if not (np.isfinite(v) and v > 0):
            raise SmartcareError(f"{name} must be a positive number; got {v}")
    if t_start is None and t_end is None:
        ts, te = sliding_windows(n, window)
    elif t_start is None or t_end is None:
        raise SmartcareError("give both t_start and t_end, or neither")
    else:
        ts, te = check_windows(t_start, t_end, n)
    si = si_distribution(method, n, mean_si, std_si, si_distr)

    a_prior = (mean_prior / std_prior) ** 2
    b_prior = std_prior**2 / mean_prior
    min_cases = math.ceil(1 / cv_posterior**2 - a_prior)
    first = inc.total[ts[0] - 1 : te[0]].sum()
    if first < min_cases:
        warnings.warn(
            f"estimating R too early in the epidemic for the desired posterior CV {cv_posterior}: the first "
            f"window has {first:g} cases, fewer than {min_cases}", RtWarning, stacklevel=2,
        )
    lam = overall_infectivity(inc, si)
    cum_local = np.concatenate([[0.0], np.cumsum(inc.local)])  # (T+1,)
    cum_lam = np.concatenate([[0.0, 0.0], np.cumsum(lam[1:])])  # (T+1,); day 1 never in a window
    mean_si_final = float(np.sum(si * np.arange(si.size)))
    ok = te > mean_si_final
    shape = np.where(ok, a_prior + cum_local[te] - cum_local[ts - 1], np.nan)
    scale = np.where(ok, 1.0 / (1.0 / b_prior + cum_lam[te] - cum_lam[ts - 1]), np.nan)

    out = pd.DataFrame({"t_start": ts, "t_end": te})
    if inc.dates is not None:
        out["date_start"] = inc.dates[ts - 1]
        out["date_end"] = inc.dates[te - 1]
    out["mean"] = shape * scale
    out["std"] = np.sqrt(shape) * scale
    for q in RT_QUANTILES:
        out[f"q{q:g}"] = gammaincinv(shape, q) * scale
    return out


def _read_csv(path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError as err:
        raise SmartcareError(f"file not found: {path}") from err
    except (OSError, ValueError) as err:
        raise SmartcareError(f"cannot read {path} as CSV: {err}") from err


def read_incidence(path) -> Incidence:
    """Read daily incidence from CSV (columns as in ``make_incidence``, e.g. ``dates, I`` or
    ``dates, local, imported``)."""
    return make_incidence(_read_csv(path))


def read_si_distr(path) -> np.ndarray:
    """Read a discrete SI distribution from CSV: column ``w`` (optional ``k`` = 0, 1, ...) or one column."""
    df = _read_csv(path)
    if "w" in df.columns:
        w = df["w"]
    elif df.shape[1] == 1:
        w = df.iloc[:, 0]
    else:
        raise SmartcareError(f"SI distribution CSV needs a column 'w'; found {list(df.columns)}")
    if "k" in df.columns and not np.array_equal(df["k"].to_numpy(), np.arange(len(df))):
        raise SmartcareError("SI distribution column 'k' must run 0, 1, 2, ... in order")
    values = pd.to_numeric(w, errors="coerce")
    if values.isna().any():
        raise SmartcareError("SI distribution has missing or non-numeric values")
    return check_si_distr(values.to_numpy(dtype=float))


def plot_rt(estimates: pd.DataFrame, incidence: Incidence, path, title: str = "Reproduction number") -> None:
    """Two-panel PNG: incidence (local and imported) and Rt by window end with its 95% credible band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = incidence.local.size
    x_inc = incidence.dates if incidence.dates is not None else np.arange(1, n + 1)
    x_r = estimates["date_end"] if "date_end" in estimates.columns else estimates["t_end"]
    fig, (ax_r, ax_i) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax_r.fill_between(x_r, estimates["q0.025"], estimates["q0.975"], alpha=0.3, label="95% CrI")
    ax_r.plot(x_r, estimates["mean"], lw=1.5, label="posterior mean")
    ax_r.axhline(1.0, color="grey", ls="--", lw=1)
    ax_r.set_ylabel("R (window ending on day)")
    ax_r.set_title(title)
    ax_r.legend(loc="upper right")
    ax_i.bar(x_inc, incidence.local, color="tab:blue", label="local")
    if incidence.imported.any():
        ax_i.bar(x_inc, incidence.imported, bottom=incidence.local, color="tab:orange", label="imported")
    ax_i.set_ylabel("daily incidence")
    ax_i.legend(loc="upper right")
    if incidence.dates is not None:
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
