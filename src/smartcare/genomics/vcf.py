"""Stage 4: write calls as VCF 4.2 (GT, GQ, DP, AD, PL; QUAL; FILTER), bgzipped and tabix-indexed.

Follows the VCF 4.2 specification (samtools/hts-specs VCFv4.2.pdf): PL in genotype order of §1.6.2,
QUAL = -10 log10 P(no variant). Output is written to a temporary file beside the target and renamed
only when complete, so a failure never leaves a half-written VCF.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pysam

from smartcare import __version__
from smartcare.core.errors import SmartcareError
from smartcare.genomics.call import VariantCall

_FORMATS = (
    ("GT", "1", "String", "Genotype"),
    ("GQ", "1", "Integer", "Genotype quality, phred-scaled"),
    ("DP", "1", "Integer", "Informative read depth"),
    ("AD", "R", "Integer", "Read depth per allele"),
    ("PL", "G", "Integer", "Phred-scaled genotype likelihoods, normalised to the best"),
)


def make_header(contigs: list[tuple[str, int]], sample: str, model: str,
                min_qual: float) -> pysam.VariantHeader:
    """VCF 4.2 header with contigs, FORMAT fields and the LowQual filter."""
    h = pysam.VariantHeader()
    h.add_meta("source", f"smartcare-{__version__} genomics call --model {model}")
    for name, length in contigs:
        h.contigs.add(name, length=length)
    h.filters.add("LowQual", None, None, f"QUAL below {min_qual:g}")
    h.filters.add("StrandBias", None, None, "SNP alt on one strand (StrandOddsRatio > 3) at low base quality")
    for fid, num, typ, desc in _FORMATS:
        h.formats.add(fid, num, typ, desc)
    h.add_sample(sample)
    return h


def write_vcf(calls: Iterable[VariantCall], path: str | Path, contigs: list[tuple[str, int]], *,
              sample: str = "SAMPLE", model: str = "variant-caller", min_qual: float = 3.0) -> Path:
    """Write ``calls`` (sorted by contig order then position) to ``path`` (.vcf.gz) plus ``.tbi``.

    Raises:
        SmartcareError: ``path`` does not end in .vcf.gz or its folder is missing.
    """
    path = Path(path)
    if not path.name.endswith(".vcf.gz"):
        raise SmartcareError(f"output {path} must end in .vcf.gz (bgzipped VCF)")
    if not path.parent.is_dir():
        raise SmartcareError(f"output folder {path.parent} does not exist")
    order = {name: i for i, (name, _) in enumerate(contigs)}
    header = make_header(contigs, sample, model, min_qual)
    fd, tmp = tempfile.mkstemp(suffix=".vcf.gz", dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        with pysam.VariantFile(tmp, "wz", header=header) as out:
            for c in sorted(calls, key=lambda c: (order[c.contig], c.pos, c.ref, c.alts)):
                rec = out.new_record(contig=c.contig, start=c.pos, alleles=(c.ref, *c.alts),
                                     qual=c.qual, filter=c.filter)
                s = rec.samples[sample]
                s["GT"] = c.gt
                s["GQ"] = c.gq
                s["DP"] = c.dp
                s["AD"] = tuple(c.ad)
                s["PL"] = tuple(c.pl)
                out.write(rec)
        pysam.tabix_index(tmp, preset="vcf", force=True)
        os.replace(tmp + ".tbi", str(path) + ".tbi")
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".tbi"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return path


def read_calls(path: str | Path) -> list[dict]:
    """Records of a VCF as plain dicts (first sample), for the API and FHIR conversion."""
    out = []
    with pysam.VariantFile(str(path)) as vf:
        sample = next(iter(vf.header.samples), None)
        for rec in vf:
            s = rec.samples[sample] if sample else {}
            out.append({"contig": rec.chrom, "pos": rec.pos - 1, "ref": rec.ref, "alts": list(rec.alts or ()),
                        "qual": rec.qual, "filter": list(rec.filter.keys()) or ["PASS"],
                        "gt": tuple(s.get("GT") or ()), "gq": s.get("GQ"), "dp": s.get("DP"),
                        "ad": list(s.get("AD") or ()), "pl": list(s.get("PL") or ())})
    return out
