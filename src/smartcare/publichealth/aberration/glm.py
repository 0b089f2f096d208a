"""Batched quasi-Poisson GLM (log link) fitted by IRLS exactly as R's ``glm.fit`` does it.

Many small, independent fits (one per monitored week and series) are stacked into one batch and iterated
together; each fit stops at the iteration where R would stop, so coefficients, dispersion, hat values and
prediction standard errors agree with R to rounding.

R reference: ``stats::glm.fit`` (start ``mu = y + 0.1``, convergence when
``|dev - dev_old| / (|dev| + 0.1) < 1e-8``, at most 25 iterations) and ``summary.glm`` (Pearson dispersion
over ``df.residual``), McCullagh & Nelder (1989) §2.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = np.finfo(float).eps  # R's .Machine$double.eps, floor of exp(eta) in poisson()$linkinv / mu.eta


@dataclass
class GlmBatch:
    """Result of :func:`fit_quasipoisson` for B fits of n (padded) rows and p columns."""

    coef: np.ndarray  # (B, p)
    mu: np.ndarray  # (B, n) fitted means (padding rows: undefined)
    resid: np.ndarray  # (B, n) working residuals (y - mu) / mu
    r_inv: np.ndarray  # (B, p, p) inverse of R from the QR of sqrt(W) X at the last iteration
    q: np.ndarray  # (B, n, p) Q of that QR
    dispersion: np.ndarray  # (B,) Pearson dispersion (summary.glm), NaN when df.residual == 0
    df_resid: np.ndarray  # (B,) n_ok - p
    converged: np.ndarray  # (B,) bool

    def hat(self) -> np.ndarray:
        """Leverages diag(Q Q^T) of the final weighted QR, (B, n); R's ``hatvalues``."""
        h = np.einsum("bnp,bnp->bn", self.q, self.q)
        return np.where(h > 1 - 10 * _EPS, 1.0, h)

    def cov_unscaled(self) -> np.ndarray:
        """(X^T W X)^{-1} = R^{-1} R^{-T}, (B, p, p); R's ``summary.glm()$cov.unscaled``."""
        return self.r_inv @ np.swapaxes(self.r_inv, 1, 2)


def _poisson_dev(y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Sum of Poisson deviance residuals per fit, (B,), as ``poisson()$dev.resids``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(y > 0, wt * (y * np.log(y / mu) - (y - mu)), mu * wt)
    return 2.0 * r.sum(axis=1)


def fit_quasipoisson(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray | None = None,
    maxit: int = 25,
    epsilon: float = 1e-8,
) -> GlmBatch:
    """Fit B quasi-Poisson log-link GLMs by IRLS, mirroring R ``glm.fit``.

    Args:
        x: design matrices, (B, n, p); padding rows are all-zero.
        y: responses, (B, n); padding rows 0.
        weights: prior weights, (B, n); padding rows must be 0 (excluded exactly as R excludes
            zero-weight observations).
        offset: linear-predictor offset, (B, n), or None.
        maxit, epsilon: R's ``glm.control`` defaults.

    Returns:
        GlmBatch with the converged (or last) state of each fit.
    """
    b, n, p = x.shape
    off = np.zeros((b, n)) if offset is None else offset
    good = weights > 0  # (B, n)
    mu = y + 0.1
    eta = np.log(mu)
    devold = _poisson_dev(y, mu, weights)
    coef = np.zeros((b, p))
    q_all = np.zeros((b, n, p))
    rinv_all = np.zeros((b, p, p))
    wsq_all = np.zeros((b, n))
    converged = np.zeros(b, dtype=bool)
    active = np.arange(b)
    for _ in range(maxit):
        if active.size == 0:
            break
        xa, ya, wa, oa, ga = x[active], y[active], weights[active], off[active], good[active]
        mu_a, eta_a = mu[active], eta[active]
        mu_eta = np.maximum(np.exp(eta_a), _EPS)
        z = (eta_a - oa) + (ya - mu_a) / mu_eta
        w = np.sqrt(np.where(ga, wa * mu_eta**2 / mu_a, 0.0))  # (A, n)
        q, r = np.linalg.qr(xa * w[:, :, None])  # (A, n, p), (A, p, p)
        qtz = np.einsum("anp,an->ap", q, z * w)
        beta = np.linalg.solve(r, qtz[:, :, None])[:, :, 0]  # (A, p)
        eta_new = np.einsum("anp,ap->an", xa, beta) + oa
        mu_new = np.maximum(np.exp(eta_new), _EPS)
        dev = _poisson_dev(ya, mu_new, wa)
        conv = np.abs(dev - devold[active]) / (np.abs(dev) + 0.1) < epsilon
        coef[active], eta[active], mu[active], devold[active] = beta, eta_new, mu_new, dev
        q_all[active], wsq_all[active] = q, w**2
        rinv_all[active] = np.linalg.inv(r)
        converged[active] = conv
        active = active[~conv]
    n_ok = good.sum(axis=1)
    df_resid = n_ok - p
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (y - mu) / np.maximum(np.exp(eta), _EPS)
        pearson = np.where(wsq_all > 0, wsq_all * resid**2, 0.0).sum(axis=1)
        dispersion = np.where(df_resid > 0, pearson / np.maximum(df_resid, 1), np.nan)
    return GlmBatch(coef, mu, resid, rinv_all, q_all, dispersion, df_resid, converged)


@dataclass
class SeasonalGlm:
    """Result of :func:`fit_seasonal` for B fits (columns: intercept, [trend], level dummies)."""

    coef: np.ndarray  # (B, p): intercept, trend (if fitted), levels 1..L-1
    mu: np.ndarray  # (B, n)
    resid: np.ndarray  # (B, n) working residuals
    cov_unscaled: np.ndarray  # (B, p, p) (X^T W X)^{-1} at the last iteration
    w_last: np.ndarray  # (B, n) working weights of the last iteration
    dispersion: np.ndarray  # (B,)
    df_resid: np.ndarray  # (B,)
    converged: np.ndarray  # (B,)
    trend: bool

    def row_x(self, t: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Design rows for trend values ``t`` (B, m) and level codes ``level`` (B, m): (B, m, p)."""
        b, m = t.shape
        p = self.coef.shape[1]
        x = np.zeros((b, m, p))
        x[:, :, 0] = 1.0
        first = 1
        if self.trend:
            x[:, :, 1] = t
            first = 2
        bi, mi = np.nonzero(level > 0)
        x[bi, mi, first + level[bi, mi] - 1] = 1.0
        return x

    def hat(self, t: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Leverages w_i x_i^T (X^T W X)^{-1} x_i, (B, n); R's ``hatvalues``."""
        x = self.row_x(t, level)  # (B, n, p)
        h = self.w_last * np.einsum("bnp,bpq,bnq->bn", x, self.cov_unscaled, x)
        return np.where(h > 1 - 10 * _EPS, 1.0, h)


def fit_seasonal(
    t: np.ndarray,
    level: np.ndarray,
    n_levels: int,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    trend: bool,
    maxit: int = 25,
    epsilon: float = 1e-8,
) -> SeasonalGlm:
    """IRLS for B quasi-Poisson GLMs ``log mu = a + [c t] + g[level] + offset`` (R ``glm.fit`` steps).

    The designs of farringtonFlexible are always an intercept, an optional linear trend and treatment
    dummies of a seasonal-block factor, so X^T W X is assembled from per-level weighted sums in O(B n)
    instead of a QR of each (n, p) matrix; the iterates are R's up to rounding.

    Args:
        t: trend covariate, (B, n) (centre it for conditioning; predictions are unaffected).
        level: factor codes 0..n_levels-1 (0 = reference level), (B, n).
        n_levels: number of factor levels L (p = 1 + trend + L - 1 columns).
        y, weights, offset: (B, n); padding rows have weight 0.
        trend: include the trend column.
    """
    b, n = y.shape
    nl = n_levels
    p = 1 + int(trend) + nl - 1
    first = 1 + int(trend)
    good = weights > 0
    counts = np.bincount(((np.arange(b) * nl)[:, None] + level)[good], minlength=b * nl).reshape(b, nl)
    rank = p - (counts[:, 1:] == 0).sum(axis=1)  # R drops the dummy of a level without observations
    mu = y + 0.1
    eta = np.log(mu)
    devold = _poisson_dev(y, mu, weights)
    coef = np.zeros((b, p))
    cov = np.zeros((b, p, p))
    w_last = np.zeros((b, n))
    converged = np.zeros(b, dtype=bool)
    active = np.arange(b)
    for _ in range(maxit):
        if active.size == 0:
            break
        a = active.size
        ya, wa, oa, ta, ga = y[active], weights[active], offset[active], t[active], good[active]
        mu_a, eta_a = mu[active], eta[active]
        mu_eta = np.maximum(np.exp(eta_a), _EPS)
        z = (eta_a - oa) + (ya - mu_a) / mu_eta
        w2 = np.where(ga, wa * mu_eta**2 / mu_a, 0.0)  # squared IRLS weights
        idx = ((np.arange(a) * nl)[:, None] + level[active]).ravel()

        def lsum(v, idx=idx, a=a):
            return np.bincount(idx, weights=v.ravel(), minlength=a * nl).reshape(a, nl)

        s0, sz = lsum(w2), lsum(w2 * z)
        xtx = np.zeros((a, p, p))
        xtz = np.zeros((a, p))
        xtx[:, 0, 0] = s0.sum(1)
        xtz[:, 0] = sz.sum(1)
        if trend:
            s1, s2, stz = lsum(w2 * ta), lsum(w2 * ta * ta), lsum(w2 * ta * z)
            xtx[:, 0, 1] = xtx[:, 1, 0] = s1.sum(1)
            xtx[:, 1, 1] = s2.sum(1)
            xtz[:, 1] = stz.sum(1)
        for j in range(1, nl):
            c = first + j - 1
            xtx[:, 0, c] = xtx[:, c, 0] = xtx[:, c, c] = s0[:, j]
            xtz[:, c] = sz[:, j]
            if trend:
                xtx[:, 1, c] = xtx[:, c, 1] = s1[:, j]
        absent = np.zeros((a, p), dtype=bool)
        absent[:, first:] = s0[:, 1:] == 0  # level missing from this fit: R drops the column
        di = np.arange(p)
        xtx[:, di, di] = np.where(absent, 1.0, xtx[:, di, di])
        inv = np.linalg.inv(xtx)  # (A, p, p)
        beta = np.einsum("apq,aq->ap", inv, xtz)
        lvl_coef = np.concatenate([np.zeros((a, 1)), beta[:, first:]], axis=1)  # (A, L)
        eta_new = beta[:, :1] + np.take_along_axis(lvl_coef, level[active], axis=1) + oa
        if trend:
            eta_new = eta_new + beta[:, 1:2] * ta
        mu_new = np.maximum(np.exp(eta_new), _EPS)
        dev = _poisson_dev(ya, mu_new, wa)
        conv = np.abs(dev - devold[active]) / (np.abs(dev) + 0.1) < epsilon
        coef[active], eta[active], mu[active], devold[active] = beta, eta_new, mu_new, dev
        cov[active], w_last[active] = inv, w2
        converged[active] = conv
        active = active[~conv]
    df_resid = good.sum(axis=1) - rank
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (y - mu) / np.maximum(np.exp(eta), _EPS)
        pearson = np.where(w_last > 0, w_last * resid**2, 0.0).sum(axis=1)
        dispersion = np.where(df_resid > 0, pearson / np.maximum(df_resid, 1), np.nan)
    return SeasonalGlm(coef, mu, resid, cov, w_last, dispersion, df_resid, converged, trend)
