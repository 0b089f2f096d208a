"""Reads laid out on the reference, indel left-alignment, and which allele a read supports.

Left-alignment follows Tan et al. 2015 ("Unified representation of genetic variants", Bioinformatics
31:2202). At indel sites a read is compared, ungapped and with its soft clips, against the reference and
each alt haplotype (the idea behind GATK HaplotypeCaller's and freebayes' read-haplotype likelihoods,
without the pair-HMM): reads that fit two haplotypes equally, such as reads ending inside a repeat, are
uninformative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pysam

NONE = -1  # read does not inform this site (does not span it, or low base quality)
OTHER = -2  # read shows an allele that is not a candidate here

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
