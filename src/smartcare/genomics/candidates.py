"""Stage 1: a pileup over BAM + FASTA regions that finds candidate SNP and indel alleles.

Reads pass a ``ReadFilter`` (flags, mapping quality). Candidate alleles need ``min_alt_count`` reads and
a minimum allele fraction. Indels are left-aligned against the reference (Tan et al. 2015,
"Unified representation of genetic variants"), so reads that place the same event differently inside a
repeat count together. Each candidate site then gets a per-read allele assignment: a read supports the
reference at an indel site only when its bases fit the reference haplotype clearly better than the alt
ones (``reads.hap_allele``); reads ending inside a repeat are uninformative, which keeps het/hom-alt
calls in STRs honest.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field

import numpy as np
import pysam

from smartcare.genomics.inputs import Region
from smartcare.genomics.reads import (
    AlignedRead,
    Reference,
    align_read,
    hap_allele,
    haplotypes,
    left_align,
    read_allele,
    repeat_end,
)


@dataclass(frozen=True)
class ReadFilter:
    """Which reads and bases count."""

    min_mapping_quality: int = 10  # reads below this MAPQ are ignored
    min_base_quality: int = 10  # bases below this quality neither support nor refute a SNP
    exclude_flags: int = 0x4 | 0x100 | 0x200 | 0x400 | 0x800  # unmapped, secondary, qcfail, dup, supp.

    def passes(self, read: pysam.AlignedSegment) -> bool:
        return not (read.flag & self.exclude_flags) and read.mapping_quality >= self.min_mapping_quality


@dataclass(frozen=True)
class CandidateConfig:
    """Thresholds of the candidate search."""

    read_filter: ReadFilter = field(default_factory=ReadFilter)  # read and base filters
    min_alt_count: int = 2  # reads that must show an allele for it to be a candidate
    min_snp_fraction: float = 0.08  # SNP allele reads / high-quality depth at the position
    min_indel_fraction: float = 0.05  # indel allele reads / depth at the anchor
    pad: int = 200  # extra bp fetched past the region end (indels that left-shift into it)


@dataclass
class Candidate:
    """One candidate site: VCF-style 0-based ``pos``, ``ref`` and ``alts`` with read evidence.

    ``ad``, ``forward`` and ``mean_bq`` have one entry per allele (reference first). ``keys`` are the
    minimal left-aligned (pos, ref, alt) of each alt, ``span_end`` is the first reference base after the
    repeat tract an indel sits in (reads must reach it to support the reference).
    """

    contig: str
    pos: int
    ref: str
    alts: list[str]
    keys: list[tuple[int, str, str]]
    ad: list[int]
    forward: list[int]
    mean_bq: list[float]
    mean_mq: float
    dp: int
    span_end: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Candidate:
        d = dict(d)
        d["keys"] = [tuple(k) for k in d["keys"]]
        return cls(**d)

    @property
    def is_indel(self) -> list[bool]:
        return [len(k[1]) != len(k[2]) for k in self.keys]


def _scan(reads: list[pysam.AlignedSegment], ref: Reference, region: Region, cfg: CandidateConfig):
    """High-quality depth and per-base mismatch counts over ``region``, plus raw indel event counts."""
    n = region.end - region.start
    r_idx, q_idx, seqs, quals = [], [], [], []
    indels: dict[tuple[int, str, str], int] = {}
    qtot = 0
    for read in reads:
        rpos, qp = read.reference_start, 0
        seq = read.query_sequence
        cigar = read.cigartuples
        if len(cigar) == 1:  # the common case: one aligned block, nothing else to look at
            r_idx.append((rpos, cigar[0][1]))
            q_idx.append(qtot)
        else:
            end = read.reference_end
            for op, ln in cigar:
                if op in (0, 7, 8):
                    r_idx.append((rpos, ln))
                    q_idx.append(qtot + qp)
                    rpos += ln
                    qp += ln
                elif op == 1:
                    if read.reference_start < rpos < end:
                        b = ref.base(rpos - 1)
                        key = left_align(ref, rpos - 1, b, b + seq[qp:qp + ln])
                        indels[key] = indels.get(key, 0) + 1
                    qp += ln
                elif op == 2:
                    key = left_align(ref, rpos - 1, ref.fetch(rpos - 1, rpos + ln), ref.base(rpos - 1))
                    indels[key] = indels.get(key, 0) + 1
                    rpos += ln
                elif op == 3:
                    rpos += ln
                elif op == 4:
                    qp += ln
        seqs.append(seq)
        quals.append(read.query_qualities)
        qtot += len(seq)
    depth = np.zeros(n, np.int64)
    counts = np.zeros((4, n), np.int64)  # (base ACGT, position)
    if not r_idx:
        return depth, counts, indels
    blocks = np.array(r_idx, dtype=np.int32)  # (blocks, 2): ref start, length
    lens = blocks[:, 1]
    within = np.arange(int(lens.sum()), dtype=np.int32) - np.repeat(np.cumsum(lens) - lens, lens)
    rp = np.repeat(blocks[:, 0], lens) + within  # reference position of every aligned base
    qp_all = np.repeat(np.array(q_idx, dtype=np.int32), lens) + within  # its index in the joined reads
    allseq = np.frombuffer("".join(seqs).encode(), dtype=np.uint8)
    allq = np.frombuffer(b"".join(quals), dtype=np.uint8)
    keep = (rp >= region.start) & (rp < region.end) & (allq[qp_all] >= cfg.read_filter.min_base_quality)
    rp, base = rp[keep] - region.start, allseq[qp_all[keep]]
    depth = np.bincount(rp, minlength=n)
    refb = ref.arr[rp + region.start - ref.offset]
    for i, b in enumerate(b"ACGT"):
        sel = (base == b) & (refb != b)
        counts[i] = np.bincount(rp[sel], minlength=n)
    return depth, counts, indels


def _sites(region: Region, ref: Reference, depth, counts, indels, cfg: CandidateConfig):
    """Group candidate alleles by position into multi-allelic sites: {pos: [keys]}."""
    sites: dict[int, list[tuple[int, str, str]]] = {}
    alt_total = counts.max(axis=0)
    for i in np.flatnonzero((alt_total >= cfg.min_alt_count)
                            & (alt_total >= cfg.min_snp_fraction * np.maximum(depth, 1))):
        pos = region.start + int(i)
        rb = ref.base(pos)
        if rb not in "ACGT":
            continue
        for b, c in zip("ACGT", counts[:, i], strict=True):
            if b != rb and c >= cfg.min_alt_count and c >= cfg.min_snp_fraction * depth[i]:
                sites.setdefault(pos, []).append((pos, rb, b))
    for key, c in indels.items():
        pos = key[0]
        if region.start <= pos < region.end and c >= cfg.min_alt_count:
            d = depth[pos - region.start]
            if c >= cfg.min_indel_fraction * max(d, 1) and "N" not in key[1] + key[2]:
                sites.setdefault(pos, []).append(key)
    return {p: sorted(set(k), key=lambda k: (len(k[1]), len(k[2]), k[2])) for p, k in sorted(sites.items())}


def _merge_alleles(keys) -> tuple[str, list[str]]:
    """Site REF (the longest) and ALTs extended to it, for keys sharing one position."""
    ref = max((k[1] for k in keys), key=len)
    return ref, [k[2] + ref[len(k[1]):] for k in keys]


@dataclass
class SitePileup:
    """A candidate with the reads covering it and the allele each read supports."""

    candidate: Candidate
    reads: list[AlignedRead]
    alleles: list[int]


def pileup_region(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, region: Region,
                  config: CandidateConfig = CandidateConfig()) -> tuple[list[SitePileup], Reference]:
    """Candidate sites whose position lies in ``region``, each with its supporting reads.

    Returns the sites (sorted by position) and the reference window used, which the examples stage
    reads for its reference channel.
    """
    clen = fasta.get_reference_length(region.contig)
    hi = min(region.end + config.pad, clen)
    ref = Reference(fasta, region.contig, max(region.start - config.pad - 200, 0), min(hi + 200, clen))
    if region.contig not in bam.references:  # a reference contig the BAM has no reads on
        return [], ref
    reads = [r for r in bam.fetch(region.contig, region.start, hi)
             if config.read_filter.passes(r) and r.cigartuples and r.query_sequence]
    depth, counts, indels = _scan(reads, ref, region, config)
    sites = _sites(region, ref, depth, counts, indels, config)
    starts = [r.reference_start for r in reads]
    max_span = max((r.reference_end - r.reference_start for r in reads), default=0)
    cache: dict[int, AlignedRead] = {}
    out = []
    min_bq = config.read_filter.min_base_quality
    for pos, keys in sites.items():
        span_end = max(repeat_end(ref, k) for k in keys)
        indel_site = any(len(k[1]) != len(k[2]) for k in keys)
        if indel_site:
            hap_lo, hap_hi, haps = haplotypes(ref, keys, pos, span_end)
        lo = bisect.bisect_left(starts, pos - max_span)
        hi_i = bisect.bisect_right(starts, pos)
        site_reads, alleles = [], []
        for j in range(lo, hi_i):
            if reads[j].reference_end <= pos:
                continue
            if j not in cache:
                cache[j] = align_read(reads[j], ref)
            if indel_site:
                a = hap_allele(cache[j], hap_lo, hap_hi, haps)
            else:
                a = read_allele(cache[j], keys, pos, span_end, min_bq)
            site_reads.append(cache[j])
            alleles.append(a)
        out.append(SitePileup(_summarise(region.contig, pos, keys, span_end, site_reads, alleles),
                              site_reads, alleles))
    return out, ref


def _summarise(contig, pos, keys, span_end, reads, alleles) -> Candidate:
    ref, alts = _merge_alleles(keys)
    n = len(keys) + 1
    ad, fwd, bq = [0] * n, [0] * n, [0.0] * n
    mq = []
    for read, a in zip(reads, alleles, strict=True):
        if a < 0:
            continue
        ad[a] += 1
        fwd[a] += not read.reverse
        bq[a] += float(read.quals[pos - read.start]) if read.start <= pos < read.end else 0.0
        mq.append(read.mapq)
    return Candidate(contig, pos, ref, alts, [tuple(k) for k in keys], ad, fwd,
                     [round(b / c, 2) if c else 0.0 for b, c in zip(bq, ad, strict=True)],
                     round(float(np.mean(mq)), 2) if mq else 0.0, sum(ad), span_end)


def find_candidates(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, regions: list[Region],
                    config: CandidateConfig = CandidateConfig()) -> list[Candidate]:
    """Candidate sites over ``regions`` (records only, no reads)."""
    out = []
    for region in regions:
        sites, _ = pileup_region(bam, fasta, region, config)
        out.extend(s.candidate for s in sites)
    return out
