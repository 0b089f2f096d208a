"""Genotype likelihoods: the classical per-read model and the site combiner shared with the network.

Classical mode (Li 2011, "A statistical framework for SNP calling ... from sequencing data",
Bioinformatics 27:2987): each informative read supports an allele with error ``e`` taken from its base
quality and mapping quality (indels: a repeat-dependent error rate); for ``c`` copies of an alt in a
diploid, ``P(read supports alt) = c/2 (1 - e) + (1 - c/2) e``. Both modes produce, per alt allele,
``P(copies = 0, 1, 2)``; ``site_genotypes`` turns those into likelihoods of every diploid genotype of a
multi-allelic site, in VCF order (0/0, 0/1, 1/1, 0/2, 1/2, 2/2, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smartcare.genomics.reads import NONE

# P(0, 1, 2 copies) of a candidate allele: heterozygosity 1e-3 (as bcftools' -P and GATK's default),
# the same for indels (chosen on the training part of sim_chr20_art30x, where it cost no false positive)
SNP_PRIOR = np.array([1.0 - 1.5e-3, 1.0e-3, 0.5e-3])
INDEL_PRIOR = np.array([1.0 - 1.5e-3, 1.0e-3, 0.5e-3])
_FRACTION = np.array([0.0, 0.5, 1.0])  # alt fraction of each copy number


def _phred_to_error(q: np.ndarray) -> np.ndarray:
    return np.power(10.0, -np.asarray(q, np.float64) / 10.0)


def allele_posteriors(site) -> np.ndarray:
    """Classical ``P(copies = 0, 1, 2)`` for each alt of a ``SitePileup``: shape (n_alts, 3)."""
    c = site.candidate
    pos = c.pos
    informative = [(r, a) for r, a in zip(site.reads, site.alleles, strict=True) if a != NONE]
    out = np.tile(SNP_PRIOR, (len(c.alts), 1))
    if not informative:
        return out
    alleles = np.array([a for _, a in informative])
    mq_err = _phred_to_error([r.mapq for r, _ in informative])
    bq = np.array([r.quals[pos - r.start] if r.start <= pos < r.end else 20 for r, _ in informative])
    repeat = max(c.span_end - pos - 1, 0)
    for i, is_indel in enumerate(c.is_indel, 1):
        if is_indel:
            err = np.full(len(informative), min(1e-3 * (1 + repeat / 2.0), 0.05))
            prior = INDEL_PRIOR
        else:
            err = _phred_to_error(np.clip(bq, 2, 60))
            prior = SNP_PRIOR
        err = np.clip(err + mq_err, 1e-6, 0.5)[:, None]  # (reads, 1)
        support = (alleles == i)[:, None]  # (reads, 1)
        p_alt = _FRACTION[None, :] * (1 - err) + (1 - _FRACTION[None, :]) * err  # (reads, 3)
        loglik = np.where(support, np.log(p_alt), np.log1p(-p_alt)).sum(axis=0)  # (3,)
        logpost = loglik + np.log(prior)
        logpost -= logpost.max()
        post = np.exp(logpost)
        out[i - 1] = post / post.sum()
    return out


def genotype_order(n_alleles: int) -> list[tuple[int, int]]:
    """VCF 4.2 §1.6.2 genotype ordering: (a, b) with a <= b, index b*(b+1)/2 + a."""
    return [(a, b) for b in range(n_alleles) for a in range(b + 1)]


@dataclass
class SiteGenotype:
    """Called genotype of one site: allele indices, phred-scaled likelihoods and qualities."""

    gt: tuple[int, int]
    pl: list[int]
    gq: int
    qual: float


def site_genotypes(allele_probs: np.ndarray) -> SiteGenotype:
    """Combine per-alt ``P(copies)`` (n_alts, 3) into a diploid genotype call.

    Each genotype's log-likelihood is the sum over alts of ``log P(copies of that alt in it)``; the
    result is normalised over genotypes. QUAL = -10 log10 P(0/0), GQ = -10 log10 P(not called GT).
    """
    probs = np.clip(np.asarray(allele_probs, np.float64), 1e-30, 1.0)  # (n_alts, 3)
    n = probs.shape[0] + 1
    order = genotype_order(n)
    logl = np.array([sum(math.log(probs[i - 1, (a == i) + (b == i)]) for i in range(1, n))
                     for a, b in order])
    logl -= logl.max()
    post = np.exp(logl) / np.exp(logl).sum()
    best = int(np.argmax(post))
    pl = np.round(-10.0 * (logl - logl.max()) / math.log(10)).astype(int)
    qual = -10.0 * math.log10(max(post[0], 1e-30))
    gq = -10.0 * math.log10(max(1.0 - post[best], 1e-10))
    return SiteGenotype(order[best], [int(x) for x in pl], int(min(round(gq), 99)), round(qual, 2))
