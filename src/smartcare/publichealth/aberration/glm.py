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
    return GlmBatch(coef, mu, rinv_all, q_all, dispersion, df_resid, converged)
