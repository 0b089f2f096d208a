"""farringtonFlexible: the improved Farrington algorithm as R surveillance 1.20.3 ``farringtonFlexible``.

For each judged week a quasi-Poisson log-linear GLM is fitted to comparable past weeks (Farrington et
al. 1996, J R Stat Soc A 159:547; Noufaily et al. 2013, Stat Med 32:1206): optional linear trend kept only
when significant (``pThresholdTrend``), with >= 3 years of data and no extrapolation beyond the largest
count; past outbreaks down-weighted by Anscombe residuals above ``weightsThreshold``; optional
``noPeriods`` seasonal blocks and population offset. The threshold is the Farrington power-transformed
normal bound (``"delta"``) or the negative-binomial quantile at the plug-in mean (``"nbPlugin"``, Noufaily)
or at the upper quantile of the mean (``"muan"``).

All weeks (and all series) are fitted together as one batch by :mod:`.glm`, which mirrors R ``glm.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import nbinom, norm, poisson
from scipy.stats import t as student_t

from smartcare.publichealth.aberration.base import DetectionResult, Detector, check_range
from smartcare.publichealth.aberration.farrington_design import Design, build_designs
from smartcare.publichealth.aberration.glm import fit_seasonal
from smartcare.publichealth.series import CountSeries, SeriesError

_CHUNK = 4096  # designs fitted together; bounds memory at ~(4096, n) arrays
_POWERS = {"none": 1.0, "1/2": 0.5, "2/3": 2.0 / 3.0}


@dataclass(frozen=True)
class FarringtonConfig:
    """Control of :class:`FarringtonFlexible` (R ``farringtonFlexible(control=...)``); defaults are R's."""

    b: int = 5  # years back in time
    w: int = 3  # half-window around the reference weeks
    reweight: bool = True  # down-weight past outbreaks
    weights_threshold: float = 2.58  # Anscombe-residual threshold for down-weighting
    alpha: float = 0.05  # one-sided (1 - alpha) prediction bound
    trend: bool = True  # fit a linear time trend when possible
    p_threshold_trend: float = 0.05  # p-value below which the trend is kept
    limit54: tuple[int, int] = (5, 4)  # no alarm unless >= 5 cases in the last 4 weeks (incl. current)
    powertrans: str = "2/3"  # "2/3", "1/2" or "none" (delta threshold only)
    population_offset: bool = False  # log(population) offset in the GLM
    no_periods: int = 1  # seasonal blocks per year (1: windows only, as Farrington 1996)
    past_weeks_not_included: int | None = None  # recent weeks left out of the fit; None means w
    threshold_method: str = "delta"  # "delta", "nbPlugin" (Noufaily 2013) or "muan"

    def __post_init__(self) -> None:
        if self.threshold_method not in ("delta", "nbPlugin", "muan"):
            raise SeriesError(
                f"threshold_method must be delta, nbPlugin or muan, got {self.threshold_method!r}"
            )
        if self.powertrans not in _POWERS:
            raise SeriesError(f"powertrans must be one of {sorted(_POWERS)}, got {self.powertrans!r}")
        if not (self.limit54[0] >= 0 and self.limit54[1] > 0):
            raise SeriesError("limit54 out of bounds: cases >= 0 and period > 0")
        if self.b < 1 or self.w < 0 or self.no_periods < 1:
            raise SeriesError("farringtonFlexible needs b >= 1, w >= 0 and no_periods >= 1")

    @classmethod
    def noufaily(cls, **overrides) -> FarringtonConfig:
        """The Noufaily et al. (2013) settings of the surveillance vignette: noPeriods=10, b=4, w=3,
        pastWeeksNotIncluded=26, pThresholdTrend=1, thresholdMethod="nbPlugin"."""
        base = dict(no_periods=10, b=4, w=3, weights_threshold=2.58, past_weeks_not_included=26,
                    p_threshold_trend=1.0, threshold_method="nbPlugin", alpha=0.05)
        return cls(**{**base, **overrides})

    @property
    def pwni(self) -> int:
        return self.w if self.past_weeks_not_included is None else self.past_weeks_not_included


def _r_quantile(dist, q: np.ndarray, *args) -> np.ndarray:
    """R's discrete quantile: smallest y with cdf(y) >= q (1 - 64 eps), as qnbinom/qpois."""
    target = q * (1 - 64 * np.finfo(float).eps)
    y = np.nan_to_num(dist.ppf(q, *args), nan=0.0, posinf=0.0)
    for _ in range(3):
        down = (y > 0) & (dist.cdf(y - 1, *args) >= target)
        up = dist.cdf(y, *args) < target
        y = y - down + up
    return y


class _Batch:
    """Designs padded to a common row count n and level count L; wtime centred per design."""

    def __init__(self, designs: list[Design]):
        n = max(d.y.size for d in designs)
        b = len(designs)
        self.n_levels = max(d.n_levels for d in designs)
        self.t = np.zeros((b, n))  # (B, n) centred wtime (slope t-test and predictions are unchanged)
        self.level = np.zeros((b, n), dtype=np.intp)
        self.y = np.zeros((b, n))
        self.off = np.zeros((b, n))
        self.real = np.zeros((b, n), dtype=bool)
        self.t0 = np.empty(b)
        for i, d in enumerate(designs):
            m, centre = d.y.size, d.wtime.mean()
            self.t[i, :m], self.level[i, :m], self.y[i, :m] = d.wtime - centre, d.level, d.y
            self.off[i, :m], self.real[i, :m], self.t0[i] = d.offset, True, d.wtime0 - centre
        self.level0 = np.array([d.level0 for d in designs], dtype=np.intp)
        self.off0 = np.array([d.offset0 for d in designs])
        self.max_y = np.array([d.y.max() for d in designs])

    def fit(self, sel: np.ndarray, trend: bool, cfg: FarringtonConfig) -> dict[str, np.ndarray]:
        """Unweighted fit, then (if requested) the Anscombe-reweighted refit, for batch rows ``sel``.

        R ``algo.farrington.fitGLM.flexible`` without its internal trend fallback (done by the caller).
        """
        t, lv, y, off, real = self.t[sel], self.level[sel], self.y[sel], self.off[sel], self.real[sel]
        first = fit_seasonal(t, lv, self.n_levels, y, real.astype(float), off, trend)
        res = first
        phi = np.maximum(first.dispersion, 1.0)
        disp = first.dispersion
        if cfg.reweight:
            with np.errstate(divide="ignore", invalid="ignore"):
                a = 1.5 * (y ** (2 / 3) * first.mu ** (-1 / 6) - first.mu**0.5)
                s = a / np.sqrt(phi[:, None] * (1 - first.hat(t, lv)))
                big = real & (s > cfg.weights_threshold)
                factor = np.where(big, s**-2.0, 1.0)
                gamma = real.sum(axis=1) / np.where(real, factor, 0.0).sum(axis=1)
            omega = np.where(real, gamma[:, None] * factor, 0.0)
            res = fit_seasonal(t, lv, self.n_levels, y, omega, off, trend)
            phi = np.maximum(res.dispersion, 1.0)
            # R then overwrites model$weights (working weights) with omega, so summary.glm() and
            # predict.glm(se.fit=TRUE) use sum(omega * working_resid^2) / df as the dispersion
            disp = np.where(omega > 0, omega * res.resid**2, 0.0).sum(axis=1) / res.df_resid
        x0 = res.row_x(self.t0[sel][:, None], self.level0[sel][:, None])[:, 0]  # (B, p)
        eta0 = np.einsum("bp,bp->b", x0, res.coef) + self.off0[sel]
        var0 = np.einsum("bp,bpq,bq->b", x0, res.cov_unscaled, x0) * disp
        out = {"converged": first.converged, "eta0": eta0, "se0": np.sqrt(var0), "phi": phi}
        if trend:
            with np.errstate(divide="ignore", invalid="ignore"):
                tval = res.coef[:, 1] / np.sqrt(res.cov_unscaled[:, 1, 1] * disp)
            out["p_trend"] = 2 * student_t.sf(np.abs(tval), res.df_resid)
        return out


def _fit_batch(batch: _Batch, cfg: FarringtonConfig) -> dict[str, np.ndarray]:
    """Final model per design: trend model when R keeps it, else the model without trend."""
    n = batch.y.shape[0]
    final = {k: np.full(n, np.nan) for k in ("eta0", "se0", "phi")}
    ok = np.zeros(n, dtype=bool)
    need_flat = np.ones(n, dtype=bool)
    if cfg.trend:
        tr = batch.fit(np.arange(n), True, cfg)
        pred = np.maximum(np.exp(tr["eta0"]), np.finfo(float).eps)
        significant = tr["p_trend"] < cfg.p_threshold_trend
        keep = tr["converged"] & (cfg.b >= 3) & significant & (pred <= batch.max_y)
        for key in final:
            final[key][keep] = tr[key][keep]
        ok |= keep
        need_flat = ~keep
    sel = np.flatnonzero(need_flat)
    if sel.size:
        fl = batch.fit(sel, False, cfg)
        good = fl["converged"]
        for key in final:
            final[key][sel[good]] = fl[key][good]
        ok[sel[good]] = True
    final["ok"] = ok
    return final


def _thresholds(eta0, se0, phi, y, cfg: FarringtonConfig) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound and score per judged week (R ``algo.farrington.threshold.farrington``/``.noufaily``)."""
    z = norm.ppf(1 - cfg.alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if cfg.threshold_method == "delta":
            mu0 = np.maximum(np.exp(eta0), np.finfo(float).eps)
            tau = phi + (se0 * mu0) ** 2 / mu0
            e = _POWERS[cfg.powertrans]
            if cfg.powertrans == "none":
                se = np.sqrt(mu0 * tau)
            elif cfg.powertrans == "1/2":
                se = np.sqrt(tau / 4)
            else:  # "2/3": Farrington et al. (1996) skewness-correcting transform
                se = np.sqrt(4 / 9 * mu0 ** (1 / 3) * tau)
            upper = (mu0**e + z * se) ** (1 / e)
            return upper, (y - mu0) / (upper - mu0)
        mu0q = np.exp(eta0) if cfg.threshold_method == "nbPlugin" else np.exp(eta0 + z * se0)
        finite = np.isfinite(mu0q) & np.isfinite(phi)
        upper = np.full(eta0.shape, np.nan)
        nb = finite & (phi > 1)
        pois = finite & ~nb
        if nb.any():
            q = np.full(nb.sum(), 1 - cfg.alpha)
            upper[nb] = _r_quantile(nbinom, q, mu0q[nb] / (phi[nb] - 1), 1 / phi[nb])
        if pois.any():
            upper[pois] = _r_quantile(poisson, np.full(pois.sum(), 1 - cfg.alpha), mu0q[pois])
        return upper, (y - eta0) / (upper - eta0)


def farrington_flexible_many(
    series_list: Sequence[CountSeries],
    ranges: Sequence[np.ndarray | Sequence[int] | None],
    config: FarringtonConfig,
) -> list[DetectionResult]:
    """farringtonFlexible on several series at once (one batched GLM pass); one result per series.

    ``ranges[i]`` are 0-based judged weeks of ``series_list[i]`` (None: R's default, week
    ``freq*b + w + 1`` to the end). Raises SeriesError when a judged week lacks ``b`` years of history.
    """
    cfg = config
    designs: list[Design] = []
    owners: list[tuple[int, np.ndarray]] = []
    for i, (s, r) in enumerate(zip(series_list, ranges, strict=True)):
        first = s.freq * cfg.b + cfg.w
        if r is None:
            s.require_history(first + 1, "farringtonFlexible")
            r = np.arange(first, len(s))
        rng = check_range(s, r, 1, "farringtonFlexible")
        owners.append((i, rng))
        designs.extend(build_designs(s, rng, cfg.b, cfg.w, cfg.no_periods, cfg.pwni, cfg.population_offset))
    eta0, se0, phi = (np.full(len(designs), np.nan) for _ in range(3))
    ok = np.zeros(len(designs), dtype=bool)
    for start in range(0, len(designs), _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, len(designs)))
        fit = _fit_batch(_Batch([designs[j] for j in idx]), cfg)
        eta0[idx], se0[idx], phi[idx], ok[idx] = fit["eta0"], fit["se0"], fit["phi"], fit["ok"]
    results, start = [], 0
    lag = cfg.limit54[1]
    for i, rng in owners:
        s, sl = series_list[i], slice(start, start + rng.size)
        start += rng.size
        y = s.observed[rng].astype(float)
        upper, score = _thresholds(eta0[sl], se0[sl], phi[sl], y, cfg)
        csum = np.concatenate([[0], np.cumsum(s.observed)])
        enough = (csum[rng + 1] - csum[np.maximum(rng + 1 - lag, 0)]) >= cfg.limit54[0]
        alarm = (enough & ~np.isnan(score) & (score > 1) & (y != 0)).astype(float)
        alarm[~ok[sl]] = np.nan
        upper = np.where(enough & ok[sl], upper, np.nan)
        results.append(DetectionResult(rng, s.observed[rng], upper, alarm, np.where(ok[sl], score, np.nan)))
    return results


class FarringtonFlexible(Detector):
    """farringtonFlexible detector (estimator wrapper of :func:`farrington_flexible_many`)."""

    config_class = FarringtonConfig

    def _detect(self, series: CountSeries, range_) -> DetectionResult:
        return farrington_flexible_many([series], [range_], self.config)[0]
