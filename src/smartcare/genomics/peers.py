"""Ours versus bcftools and freebayes on the same reads, scored by the same ``evaluate``.

Peers run as the sim_chr20_art30x MANIFEST ran them: ``bcftools mpileup -f REF -a AD,DP BAM -Ou |
bcftools call -mv`` and ``freebayes -f REF BAM`` (both from Debian), restricted to the same region, each
then ``bcftools norm -f REF -m -any``. Wall time is measured per caller on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.genomics.evaluate import evaluate
from smartcare.genomics.inputs import open_reference, parse_regions
from smartcare.genomics.pipeline import RunConfig, run


def _sh(cmd: str) -> None:
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if done.returncode != 0:
        raise SmartcareError(f"peer command failed ({done.returncode}): {cmd}\n{done.stderr[-2000:]}")


def _peer_commands(ref: str, bam: str, region: str | None, out: str) -> dict[str, str]:
    reg_bc = f"-r {region}" if region else ""
    reg_fb = f"-r {region}" if region else ""
    return {
        "bcftools": f"bcftools mpileup -f {ref} -a AD,DP {reg_bc} {bam} -Ou 2>/dev/null | "
                    f"bcftools call -mv -Oz -o {out}/bcftools.raw.vcf.gz",
        "freebayes": f"freebayes -f {ref} {reg_fb} {bam} | bgzip -c > {out}/freebayes.raw.vcf.gz",
    }


def compare_with_peers(ref: str | Path, bam: str | Path, truth: str | Path, bed: str | Path | None = None, *,
                       regions: str | None = None, workdir: str | Path | None = None,
                       ours: tuple[str, ...] = ("variant-caller", "classical"), threads: int = 1,
                       peers: tuple[str, ...] = ("bcftools", "freebayes")) -> pd.DataFrame:
    """One row per (caller, SNP|INDEL): TP, FP, FN, precision, recall, f1, gt_concordance, wall_s.

    ``regions`` (``chr:start-end``, 1-based) limits every caller to the same interval; scoring is inside
    ``bed`` intersected with that interval. Raises ``SmartcareError`` when a peer is not installed.
    """
    ref, bam = str(ref), str(bam)
    for tool in peers:
        if shutil.which(tool) is None:
            raise SmartcareError(f"{tool} is not installed; `apt-get install -y bcftools freebayes tabix`")
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="peers-") if own_tmp else workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        score_bed = _score_bed(ref, bed, regions, work)
        rows = []
        vcfs: dict[str, Path] = {}
        for model in ours:
            out = work / f"smartcare_{model}.vcf.gz"
            t0 = time.perf_counter()
            run(ref, bam, out, regions, RunConfig(model=model, threads=threads))
            vcfs[f"smartcare-{model}"] = out
            rows.append((f"smartcare-{model}", time.perf_counter() - t0))
        cmds = _peer_commands(ref, bam, regions, str(work))
        for tool in peers:
            t0 = time.perf_counter()
            _sh(cmds[tool])
            wall = time.perf_counter() - t0
            _sh(f"bcftools norm -f {ref} -m -any {work}/{tool}.raw.vcf.gz -Oz -o {work}/{tool}.norm.vcf.gz "
                "2>/dev/null")
            vcfs[tool] = work / f"{tool}.norm.vcf.gz"
            rows.append((tool, wall))
        table = []
        for caller, wall in rows:
            result = evaluate(truth, vcfs[caller], score_bed, ref)
            for kind in ("SNP", "INDEL"):
                table.append({"caller": caller, "type": kind, **result[kind], "wall_s": round(wall, 2)})
        return pd.DataFrame(table)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def _score_bed(ref: str, bed: str | Path | None, regions: str | None, work: Path) -> Path | None:
    """``bed`` clipped to ``regions`` (written to ``work``); ``bed`` itself when no regions."""
    if regions is None:
        return Path(bed) if bed else None
    from smartcare.genomics.inputs import read_bed

    fasta = open_reference(ref)
    wanted = parse_regions(regions, fasta)
    base = read_bed(bed) if bed else parse_regions(None, fasta)
    lines = []
    for w in wanted:
        for b in base:
            if b.contig == w.contig and b.start < w.end and w.start < b.end:
                lines.append(f"{w.contig}\t{max(b.start, w.start)}\t{min(b.end, w.end)}\n")
    path = work / "score.bed"
    path.write_text("".join(lines))
    return path
