"""Compare a query VCF with a truth VCF inside a BED: TP/FP/FN, precision/recall/F1, GT concordance.

Alleles are split (one record per ALT, dosage = copies of that ALT in GT), trimmed of shared bases,
MNPs split into SNPs, and indels left-aligned against the reference (Tan et al. 2015). A record counts
only when its REF span lies inside one BED interval; query records count only with FILTER PASS or ``.``.
Matching is exact on (contig, pos, ref, alt), separately for SNPs and indels, as in the GA4GH
benchmarking "allele match" level (Krusche et al. 2019, Nat Biotechnol 37:555) without re-alignment.
``bcftools_isec_counts`` recounts with ``bcftools norm`` + ``bcftools isec`` as an independent check.
"""

from __future__ import annotations

import bisect
import subprocess
import tempfile
from pathlib import Path

import pysam

from smartcare.core.errors import SmartcareError
from smartcare.genomics.inputs import open_reference, read_bed

Key = tuple[str, int, str, str]  # contig, 0-based pos, ref, alt


def _left_align(fasta: pysam.FastaFile, contig: str, pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    if min(len(ref), len(alt)) != 1 or ref[0] != alt[0]:
        return pos, ref, alt
    lo = max(pos - 500, 0)
    seq = fasta.fetch(contig, lo, pos + len(ref)).upper()
    p = pos - lo
    body = ref[1:] if len(ref) > len(alt) else alt[1:]
    is_del = len(ref) > len(alt)
    while p > 0 and seq[p] == body[-1]:
        body = body[-1] + body[:-1]
        p -= 1
    anchor = seq[p]
    return (p + lo, anchor + body, anchor) if is_del else (p + lo, anchor, anchor + body)


def normalise(contig: str, pos: int, ref: str, alt: str, fasta: pysam.FastaFile | None) -> list[Key]:
    """Minimal, left-aligned representation(s) of one biallelic record (MNPs become SNPs)."""
    ref, alt = ref.upper(), alt.upper()
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    if len(ref) == len(alt):
        return [(contig, pos + i, r, a) for i, (r, a) in enumerate(zip(ref, alt, strict=True)) if r != a]
    if fasta is not None:
        pos, ref, alt = _left_align(fasta, contig, pos, ref, alt)
    return [(contig, pos, ref, alt)]


def load_variants(path: str | Path, fasta: pysam.FastaFile | None = None,
                  pass_only: bool = True) -> dict[Key, int]:
    """{normalised allele: dosage} of the first sample of a VCF (dosage 0, ``*`` and ``<..>`` dropped)."""
    path = Path(path)
    if not path.is_file():
        raise SmartcareError(f"VCF not found: {path}")
    out: dict[Key, int] = {}
    verbosity = pysam.set_verbosity(0)  # htslib warns about missing indexes and header types
    try:
        with pysam.VariantFile(str(path)) as vf:
            sample = next(iter(vf.header.samples), None)
            for rec in vf:
                if pass_only and list(rec.filter.keys()) not in ([], ["PASS"]):
                    continue
                gt = rec.samples[sample].get("GT") if sample else None
                for i, alt in enumerate(rec.alts or (), 1):
                    if alt == "*" or alt.startswith("<"):
                        continue
                    dosage = sum(1 for a in (gt or (i,)) if a == i) if gt and None not in gt else 1
                    if dosage == 0:
                        continue
                    for key in normalise(rec.chrom, rec.pos - 1, rec.ref, alt, fasta):
                        out[key] = max(out.get(key, 0), dosage)
    except (OSError, ValueError) as err:
        raise SmartcareError(f"cannot read VCF {path}: {err}") from err
    finally:
        pysam.set_verbosity(verbosity)
    return out


class Bed:
    """Interval lookup: is ``[start, end)`` inside one interval?"""

    def __init__(self, path: str | Path | None):
        self.by_contig: dict[str, tuple[list[int], list[int]]] = {}
        self.everything = path is None
        if path is None:
            return
        merged: dict[str, list[list[int]]] = {}
        for r in sorted(read_bed(path)):
            iv = merged.setdefault(r.contig, [])
            if iv and r.start <= iv[-1][1]:
                iv[-1][1] = max(iv[-1][1], r.end)
            else:
                iv.append([r.start, r.end])
        self.by_contig = {c: ([a for a, _ in v], [b for _, b in v]) for c, v in merged.items()}

    @classmethod
    def from_intervals(cls, intervals: list[tuple[str, int, int]]) -> Bed:
        """A Bed of non-overlapping (contig, start, end) intervals, without a file."""
        bed = cls(None)
        bed.everything = False
        for contig, start, end in sorted(intervals):
            starts, ends = bed.by_contig.setdefault(contig, ([], []))
            starts.append(start)
            ends.append(end)
        return bed

    def contains(self, contig: str, start: int, end: int) -> bool:
        if self.everything:
            return True
        if contig not in self.by_contig:
            return False
        starts, ends = self.by_contig[contig]
        i = bisect.bisect_right(starts, start) - 1
        return i >= 0 and end <= ends[i]


def _kind(key: Key) -> str:
    return "SNP" if len(key[2]) == 1 and len(key[3]) == 1 else "INDEL"


def score(truth: dict[Key, int], query: dict[Key, int], bed: Bed) -> dict[str, dict]:
    """TP/FP/FN, precision, recall, F1 and GT concordance for SNP, INDEL and ALL."""
    def inside(k: Key) -> bool:
        return bed.contains(k[0], k[1], k[1] + len(k[2]))

    t = {k: v for k, v in truth.items() if inside(k)}
    q = {k: v for k, v in query.items() if inside(k)}
    out = {}
    for kind in ("SNP", "INDEL", "ALL"):
        tk = {k for k in t if kind in ("ALL", _kind(k))}
        qk = {k for k in q if kind in ("ALL", _kind(k))}
        tp_keys = tk & qk
        tp, fp, fn = len(tp_keys), len(qk - tk), len(tk - qk)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        conc = sum(t[k] == q[k] for k in tp_keys) / tp if tp else 0.0
        out[kind] = {"TP": tp, "FP": fp, "FN": fn, "precision": round(p, 4), "recall": round(r, 4),
                     "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "gt_concordance": round(conc, 4)}
    return out


def evaluate(truth: str | Path, query: str | Path, bed: str | Path | None = None,
             ref: str | Path | None = None) -> dict[str, dict]:
    """Score ``query`` against ``truth`` inside ``bed`` (whole genome when None).

    Returns ``{"SNP": {...}, "INDEL": {...}, "ALL": {...}}`` each with TP, FP, FN, precision, recall,
    f1 and gt_concordance. Raises ``SmartcareError`` for unreadable inputs.
    """
    fasta = open_reference(ref) if ref is not None else None
    return score(load_variants(truth, fasta, pass_only=False), load_variants(query, fasta), Bed(bed))


def bcftools_isec_counts(truth: str | Path, query: str | Path, bed: str | Path, ref: str | Path,
                         bcftools: str = "bcftools") -> dict[str, dict[str, int]]:
    """TP/FP/FN per SNP/INDEL counted by ``bcftools norm -m -any`` + ``bcftools isec`` (needs bcftools).

    Used to show that ``evaluate`` agrees with the field's standard tool on the same inputs.
    """
    with tempfile.TemporaryDirectory() as tmp:
        norm = []
        for name, src in (("truth", truth), ("query", query)):
            dst = f"{tmp}/{name}.vcf.gz"
            flt = ["-f", "PASS,."] if name == "query" else []
            subprocess.run(f"{bcftools} view {' '.join(flt)} -T {bed} {src} -Ou | {bcftools} norm -f {ref} "
                           f"-m -any -Ou - | {bcftools} view -e 'GT=\"ref\" || GT~\"0/0\"' -Oz -o {dst}",
                           shell=True, check=True, capture_output=True)
            subprocess.run([bcftools, "index", "-t", dst], check=True, capture_output=True)
            norm.append(dst)
        out = {}
        for kind, flag in (("SNP", "snps"), ("INDEL", "indels")):
            subprocess.run([bcftools, "isec", "-c", "none", "-i", f"TYPE=\"{flag[:-1]}\"",
                            "-i", f"TYPE=\"{flag[:-1]}\"", "-p", f"{tmp}/{flag}", *norm],
                           check=True, capture_output=True)
            n = [sum(1 for line in open(f"{tmp}/{flag}/000{i}.vcf") if not line.startswith("#"))
                 for i in range(3)]
            out[kind] = {"FN": n[0], "FP": n[1], "TP": n[2]}
        return out
