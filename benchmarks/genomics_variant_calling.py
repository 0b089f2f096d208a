"""smartcare's variant caller against bcftools and freebayes (Debian packages) on the same BAMs, one run.

Scored by smartcare's evaluate (normalised, left-aligned, split multi-allelics, matched by allele) inside
the truth BED: held-out part of the simulated contig at 30x and 15x, and the real NA12878 chr22 slice.
"""

from __future__ import annotations

import pandas as pd

from benchmarks.harness import ensure_apt, markdown_table
from smartcare.core.data import dataset_path
from smartcare.genomics.peers import compare_with_peers

NAME = "genomics_variant_calling"
TITLE = "Genomics: variant calling vs bcftools and freebayes (same BAMs, one run)"
HELD_OUT = "chr20_10100001_10600000:350001-500000"  # validation region; training used positions < 350,000


def run() -> dict:
    ensure_apt(["bcftools", "freebayes", "tabix", "samtools"], ["bcftools", "freebayes", "bgzip"])
    sim = dataset_path("genomics/sim_chr20_art30x")
    na = dataset_path("genomics/na12878_chr22_tiny_freebayes")
    tables, metrics, peer, ratios = {}, {}, {}, {}
    for depth in ("30x", "15x"):
        t = compare_with_peers(sim / "ref.fa", sim / f"sim{depth}.bam", sim / "truth.vcf.gz", sim / "confident.bed",
                               regions=HELD_OUT, threads=2)
        tables[f"held-out region {HELD_OUT}, {depth}"] = markdown_table(t)
        _collect(t, depth, metrics, peer, ratios)
    t = compare_with_peers(na / "q.fa", na / "NA12878.chr22.tiny.bam", na / "truth.clean.vcf.gz", None)
    tables["NA12878 chr22 tiny slice (real reads, SNP-only truth)"] = markdown_table(t)
    _collect(t, "na12878", metrics, peer, ratios)
    return {"metrics": metrics, "peer": peer, "ratios": ratios, "tables": tables,
            "notes": "ratios: F1 ours / F1 peer (>1 is better) and wall ours / wall peer (<1 is faster)."}


def _collect(t: pd.DataFrame, tag: str, metrics: dict, peer: dict, ratios: dict) -> None:
    caller_col = "caller" if "caller" in t.columns else t.columns[0]
    kind_col = "type" if "type" in t.columns else t.columns[1]
    for _, row in t.iterrows():
        key = f"{tag}_{row[kind_col]}_f1"
        if str(row[caller_col]) == "smartcare-variant-caller":
            metrics[key] = float(row["f1"])
            metrics[f"{tag}_wall_s"] = float(row["wall_s"])
        elif str(row[caller_col]) in ("bcftools", "freebayes"):
            peer[f"{row[caller_col]}_{key}"] = float(row["f1"])
            peer[f"{row[caller_col]}_{tag}_wall_s"] = float(row["wall_s"])
    for p in ("bcftools", "freebayes"):
        for k in [k for k in metrics if k.startswith(tag) and k.endswith("_f1")]:
            pk = f"{p}_{k}"
            if pk in peer and peer[pk] == peer[pk] and peer[pk] > 0:
                ratios[f"f1_{k}_vs_{p}"] = metrics[k] / peer[pk]
        if f"{p}_{tag}_wall_s" in peer and f"{tag}_wall_s" in metrics:
            ratios[f"wall_{tag}_vs_{p}"] = metrics[f"{tag}_wall_s"] / peer[f"{p}_{tag}_wall_s"]
