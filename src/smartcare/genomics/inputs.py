"""Opening and checking the caller's inputs: reference FASTA, indexed BAM, regions and shards.

Every bad input raises ``SmartcareError`` with a message naming the file and the problem, before any
output is written: a BAM without index, a truncated BAM, contig names that differ between BAM and FASTA,
a FASTA without ``.fai`` (built beside it when that folder is writable, refused otherwise).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pysam

from smartcare.core.errors import SmartcareError


@dataclass(frozen=True, order=True)
class Region:
    """A half-open, 0-based interval ``[start, end)`` on one contig."""

    contig: str
    start: int
    end: int

    def __str__(self) -> str:  # samtools style, 1-based inclusive
        return f"{self.contig}:{self.start + 1}-{self.end}"


def open_reference(path: str | Path) -> pysam.FastaFile:
    """Open a FASTA, building ``<path>.fai`` when missing and the folder is writable.

    Raises:
        SmartcareError: missing file, no index and a read-only folder, or an unreadable FASTA.
    """
    path = Path(path)
    if not path.is_file():
        raise SmartcareError(f"reference FASTA not found: {path}")
    fai = Path(str(path) + ".fai")
    if not fai.is_file():
        if not os.access(path.parent, os.W_OK):
            raise SmartcareError(
                f"reference FASTA {path} has no index ({fai.name}) and its folder is not writable; "
                f"run `samtools faidx {path}` where you can write, or copy the FASTA to a writable folder")
        try:
            pysam.faidx(str(path))
        except pysam.SamtoolsError as err:
            raise SmartcareError(f"cannot index reference FASTA {path}: {err}") from err
    try:
        return pysam.FastaFile(str(path))
    except (OSError, ValueError) as err:
        raise SmartcareError(f"cannot read reference FASTA {path}: {err}") from err


def open_alignments(path: str | Path, reference: pysam.FastaFile | None = None) -> pysam.AlignmentFile:
    """Open an indexed, intact BAM/CRAM whose contigs agree with ``reference``.

    Raises:
        SmartcareError: missing file, missing index, truncated file (no BGZF EOF block), or a contig
            whose name or length differs from the reference.
    """
    path = Path(path)
    if not path.is_file():
        raise SmartcareError(f"BAM file not found: {path}")
    if path.suffix == ".bam" and not _has_bgzf_eof(path):
        raise SmartcareError(f"BAM {path} is truncated (no BGZF end-of-file block); re-create or re-copy it")
    try:
        bam = pysam.AlignmentFile(str(path), "rb", check_sq=True)
    except (OSError, ValueError) as err:
        raise SmartcareError(f"cannot read BAM {path}: {err}") from err
    if not bam.has_index():
        bam.close()
        raise SmartcareError(f"BAM {path} has no index (.bai/.csi); run `samtools index {path}`")
    if reference is not None:
        ref_lengths = dict(zip(reference.references, reference.lengths, strict=True))
        mismatched = [c for c, n in zip(bam.references, bam.lengths, strict=True)
                      if ref_lengths.get(c) not in (None, n)]
        shared = [c for c in bam.references if c in ref_lengths]
        if not shared or mismatched:
            names = ", ".join(bam.references[:5])
            bam.close()
            raise SmartcareError(
                f"contig names do not match between BAM {path} ({names}) and the "
                f"reference ({', '.join(reference.references[:5])})"
                + (f"; lengths differ for {', '.join(mismatched[:5])}" if mismatched else ""))
    return bam


_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _has_bgzf_eof(path: Path) -> bool:
    """True when the file ends with the 28-byte BGZF end-of-file block (SAM spec §4.1.2)."""
    size = path.stat().st_size
    if size < len(_BGZF_EOF):
        return False
    with open(path, "rb") as fh:
        fh.seek(size - len(_BGZF_EOF))
        return fh.read() == _BGZF_EOF


_REGION = re.compile(r"^(?P<contig>[^:]+)(?::(?P<start>[\d,]+)-(?P<end>[\d,]+))?$")


def parse_regions(spec: str | Path | None, reference: pysam.FastaFile) -> list[Region]:
    """Regions from ``None`` (every contig), a BED file, or ``chr:start-end`` (1-based inclusive).

    Raises:
        SmartcareError: an unknown contig, an empty or inverted interval, or an unreadable BED.
    """
    lengths = dict(zip(reference.references, reference.lengths, strict=True))
    if spec is None:
        return [Region(c, 0, n) for c, n in lengths.items()]
    text = str(spec)
    if Path(text).is_file():
        regions = read_bed(text)
    else:
        m = _REGION.match(text.strip())
        if not m:
            raise SmartcareError(f"region {text!r} is neither a BED file nor chr:start-end")
        contig = m.group("contig")
        if m.group("start") is None:
            regions = [Region(contig, 0, lengths.get(contig, 0))]
        else:
            regions = [Region(contig, int(m.group("start").replace(",", "")) - 1,
                              int(m.group("end").replace(",", "")))]
    for r in regions:
        if r.contig not in lengths:
            raise SmartcareError(f"region {r} names contig {r.contig!r}, absent from the reference")
        if not 0 <= r.start < r.end <= lengths[r.contig]:
            raise SmartcareError(f"region {r} is empty or runs past the end of {r.contig} "
                                 f"(length {lengths[r.contig]})")
    return sorted(regions)


def read_bed(path: str | Path) -> list[Region]:
    """BED intervals (0-based, half-open) from a plain or gzipped BED file."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    try:
        with opener(path, "rt") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                f = line.split("\t")
                if len(f) < 3:
                    raise SmartcareError(f"BED {path} line {n}: expected chrom, start, end")
                out.append(Region(f[0], int(f[1]), int(f[2])))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, SmartcareError):
            raise
        raise SmartcareError(f"cannot read BED {path}: {err}") from err
    return out


def shard(regions: list[Region], size: int) -> list[Region]:
    """Cut regions into consecutive pieces of at most ``size`` bp (order kept)."""
    out = []
    for r in regions:
        for s in range(r.start, r.end, size):
            out.append(Region(r.contig, s, min(s + size, r.end)))
    return out
