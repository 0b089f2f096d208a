"""Stage 1: a pileup over BAM + FASTA regions that finds candidate SNP and indel alleles.

Reads pass a ``ReadFilter`` (flags, mapping quality). Candidate alleles need ``min_alt_count`` reads and
a minimum allele fraction. Indels are left-aligned against the reference (Tan et al. 2015,
"Unified representation of genetic variants"), so reads that place the same event differently inside a
repeat count together. Each candidate site then gets a per-read allele assignment: a read supports the
reference at an indel site only when it spans the whole repeat tract around it (reads that end inside
the tract are uninformative, which keeps het/hom-alt calls in STRs honest).
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field

import numpy as np
import pysam

from smartcare.genomics.inputs import Region

NONE = -1  # read does not inform this site (does not span it, or low base quality)
OTHER = -2  # read shows an allele that is not a candidate here


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


@dataclass
class AlignedRead:
    """A read laid out on reference coordinates ``[start, start + len(bases))``.

    ``bases``: read base (ASCII) per reference position, ``-`` for a deletion, 0 for a skip;
    ``ins_after``: an insertion follows that position; ``events``: left-aligned indels (pos, ref, alt).
    """

    start: int
    bases: np.ndarray
    quals: np.ndarray
    ins_after: np.ndarray
    events: frozenset
    mapq: int
    reverse: bool
    name: str
    qpos: np.ndarray  # query index aligned to each reference position, -1 in deletions
    seq: np.ndarray  # whole query sequence (ASCII, soft clips included)
    qual: np.ndarray  # whole query base qualities

    @property
    def end(self) -> int:
        return self.start + len(self.bases)


class Reference:
    """An uppercase reference window ``seq`` starting at 0-based ``offset``."""

    def __init__(self, fasta: pysam.FastaFile, contig: str, lo: int, hi: int):
        self.offset = lo
        self.seq = fasta.fetch(contig, lo, hi).upper()
        self.arr = np.frombuffer(self.seq.encode(), dtype=np.uint8)

    def base(self, pos: int) -> str:
        i = pos - self.offset
        return self.seq[i] if 0 <= i < len(self.seq) else "N"

    def fetch(self, a: int, b: int) -> str:
        return self.seq[max(a - self.offset, 0):max(b - self.offset, 0)]


def left_align(ref: Reference, pos: int, ref_allele: str, alt_allele: str) -> tuple[int, str, str]:
    """Left-align a biallelic anchored indel (VCF style, 0-based anchor ``pos``)."""
    seq, off = ref.seq, ref.offset
    if len(ref_allele) > len(alt_allele):  # deletion of seq[s:s+n]
        n = len(ref_allele) - len(alt_allele)
        s = pos + 1 - off
        while s - 1 > 0 and seq[s - 1] == seq[s + n - 1]:
            s -= 1
        return s - 1 + off, seq[s - 1:s + n], seq[s - 1]
    ins = alt_allele[1:]
    p = pos - off
    while p > 0 and seq[p] == ins[-1]:
        ins = ins[-1] + ins[:-1]
        p -= 1
    return p + off, seq[p], seq[p] + ins


def repeat_end(ref: Reference, key: tuple[int, str, str]) -> int:
    """First reference position after the tract an indel can slide through (right shift limit)."""
    pos, r, a = key
    seq, off = ref.seq, ref.offset
    if len(r) == len(a):
        return pos + 1
    unit = r[1:] if len(r) > len(a) else a[1:]
    e = pos + 1 - off + (len(r) - 1)
    j = 0
    while e < len(seq) and seq[e] == unit[j % len(unit)]:
        e += 1
        j += 1
    return e + off


def align_read(read: pysam.AlignedSegment, ref: Reference) -> AlignedRead:
    """Lay ``read`` out on the reference and collect its left-aligned indel events."""
    start = read.reference_start
    span = read.reference_end - start
    seq = np.frombuffer(read.query_sequence.encode(), dtype=np.uint8)
    qual = np.asarray(read.query_qualities, dtype=np.uint8)
    bases = np.zeros(span, np.uint8)
    quals = np.zeros(span, np.uint8)
    ins_after = np.zeros(span, bool)
    qpos = np.full(span, -1, np.int32)
    events = []
    r = qp = 0
    for op, ln in read.cigartuples:
        if op in (0, 7, 8):
            bases[r:r + ln] = seq[qp:qp + ln]
            quals[r:r + ln] = qual[qp:qp + ln]
            qpos[r:r + ln] = np.arange(qp, qp + ln)
            r += ln
            qp += ln
        elif op == 1:
            if 0 < r < span:
                ins_after[r - 1] = True
                p = start + r - 1
                b = ref.base(p)
                events.append(left_align(ref, p, b, b + read.query_sequence[qp:qp + ln]))
            qp += ln
        elif op == 2:
            bases[r:r + ln] = 45  # '-'
            quals[r:r + ln] = qual[qp - 1] if qp > 0 else 0
            p = start + r - 1
            events.append(left_align(ref, p, ref.fetch(p, p + ln + 1), ref.base(p)))
            r += ln
        elif op == 3:
            r += ln
        elif op == 4:
            qp += ln
    return AlignedRead(start, bases, quals, ins_after, frozenset(events), read.mapping_quality,
                       read.is_reverse, read.query_name, qpos, seq, qual)


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


HAP_FLANK = 12  # bp of reference either side of an indel site in the haplotype comparison
HAP_MARGIN = 10  # phred-scaled mismatch margin a read needs between its best and second-best haplotype


def haplotypes(ref: Reference, keys, pos: int, span_end: int) -> tuple[int, int, list[np.ndarray]]:
    """Reference and one alt haplotype per key over ``[pos - HAP_FLANK, span_end + HAP_FLANK)``."""
    lo, hi = pos - HAP_FLANK, span_end + HAP_FLANK
    haps = [ref.fetch(lo, hi)]
    for p, r, a in keys:
        haps.append(ref.fetch(lo, p) + a + ref.fetch(p + len(r), hi))
    return lo, hi, [np.frombuffer(h.encode(), np.uint8) for h in haps]


def hap_allele(read: AlignedRead, lo: int, hi: int, haps: list[np.ndarray]) -> int:
    """Allele whose haplotype the read's bases (soft clips included) match best, or ``NONE``.

    The read is laid ungapped from its aligned base at the window's left edge (or, for reads starting
    inside the window, back from the right edge); mismatches cost their base quality (capped at 30).
    Reads that fit two haplotypes within ``HAP_MARGIN`` (e.g. ending inside a repeat) are uninformative.
    """
    n = len(read.seq)
    if read.start <= lo and lo < read.end and read.qpos[lo - read.start] >= 0:
        q0 = int(read.qpos[lo - read.start])
        pieces = [(read.seq[q0:q0 + len(h)], read.qual[q0:q0 + len(h)], h[:max(min(len(h), n - q0), 0)])
                  for h in haps]
    elif read.end >= hi and read.qpos[hi - 1 - read.start] >= 0:
        q1 = int(read.qpos[hi - 1 - read.start]) + 1
        pieces = []
        for h in haps:
            q0 = max(q1 - len(h), 0)
            pieces.append((read.seq[q0:q1], read.qual[q0:q1], h[len(h) - (q1 - q0):]))
    else:
        return NONE
    costs = []
    for s, q, h in pieces:
        m = min(len(s), len(h))
        costs.append(int(np.minimum(q[:m], 30)[s[:m] != h[:m]].sum()))
    order = np.argsort(costs, kind="stable")
    if costs[order[1]] - costs[order[0]] < HAP_MARGIN:
        return NONE
    return int(order[0])


def read_allele(read: AlignedRead, keys, pos: int, span_end: int, min_bq: int) -> int:
    """Allele index a read supports at a SNP-only site: 0 ref, i for ``keys[i-1]``, or ``NONE``/``OTHER``."""
    for i, k in enumerate(keys, 1):
        if len(k[1]) != len(k[2]) and k in read.events:
            return i
    for e in read.events:
        if e[0] <= span_end and e[0] + len(e[1]) > pos:
            return OTHER
    if not (read.start <= pos and read.end > span_end):
        return NONE
    b = int(read.bases[pos - read.start])
    if b == 0 or read.quals[pos - read.start] < min_bq:
        return NONE
    base = chr(b)
    for i, k in enumerate(keys, 1):
        if len(k[1]) == len(k[2]) and base == k[2]:
            return i
    snp_site = any(len(k[1]) == len(k[2]) for k in keys)
    if snp_site and base != keys[0][1][0]:
        return OTHER
    return 0


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
