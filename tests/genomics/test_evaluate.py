"""evaluate() agrees with the dataset's reference counting and with itself on real truth sets."""

from __future__ import annotations

import gzip
import shutil

import pysam
import pytest

from smartcare.genomics.evaluate import Bed, bcftools_isec_counts, evaluate, normalise


def _reference_rows(sim_dir):
    rows = {}
    for line in (sim_dir / "peers" / "compare.tsv").read_text().splitlines():
        label, kind, *fields = line.split("\t")
        rows[(label, kind)] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return rows


@pytest.mark.parametrize("depth,caller", [("30x", "bcftools"), ("15x", "freebayes"),
                                          ("15x", "freebayes_q20"), ("15x", "bcftools")])
def test_matches_compare_vcf_on_peer_calls(sim_dir, depth, caller):
    got = evaluate(sim_dir / "truth.vcf.gz", sim_dir / "peers" / f"{caller}_{depth}.norm.vcf.gz",
                   sim_dir / "confident.bed", sim_dir / "ref.fa")
    ref = _reference_rows(sim_dir)
    for kind in ("SNP", "INDEL"):
        want = ref[(f"A_{depth}_{caller}", kind)]
        assert (got[kind]["TP"], got[kind]["FP"], got[kind]["FN"]) == (want["TP"], want["FP"], want["FN"])
        assert got[kind]["f1"] == pytest.approx(want["F1"], abs=1e-4)
        assert got[kind]["gt_concordance"] == pytest.approx(want["GTconc"], abs=1e-4)


def test_platinum_truth_self_and_perturbed(shared_data, tmp_path):
    pg = shared_data / "genomics" / "platinum_genomes_na12878_chr21_truth"
    truth, bed = pg / "PG_NA12878_chr21.vcf.gz", pg / "PG_Conf_chr21.bed.gz"
    same = evaluate(truth, truth, bed)  # query side keeps PASS only; truth keeps every record
    assert same["SNP"]["FP"] == 0 and same["INDEL"]["FP"] == 0 and same["SNP"]["TP"] > 40_000
    assert same["SNP"]["gt_concordance"] == 1.0
    inside = Bed(bed)
    query = tmp_path / "q.vcf"
    dropped = 0
    with gzip.open(truth, "rt") as fin, open(query, "w") as fout:
        for line in fin:
            f = line.split("\t")
            if (not line.startswith("#") and dropped < 20 and len(f[3]) == 1 and len(f[4]) == 1
                    and f[6] == "PASS" and inside.contains(f[0], int(f[1]) - 1, int(f[1]))):
                dropped += 1
                continue
            fout.write(line)
    got = evaluate(truth, query, bed)
    assert dropped == 20
    assert got["SNP"]["FN"] == same["SNP"]["FN"] + 20 and got["SNP"]["FP"] == 0
    assert got["INDEL"] == same["INDEL"]


def test_normalise_trims_splits_and_left_aligns(sim_dir):
    fasta = pysam.FastaFile(str(sim_dir / "ref.fa"))
    c = fasta.references[0]
    assert normalise(c, 10, "ACG", "ATG", None) == [(c, 11, "C", "T")]
    assert normalise(c, 10, "AC", "GT", None) == [(c, 10, "A", "G"), (c, 11, "C", "T")]
    seq = fasta.fetch(c, 0, 400_000)
    i = seq.find("TTTTTT", 1000)  # a homopolymer: deleting its last T left-aligns to the base before it
    key = normalise(c, i + 4, seq[i + 4:i + 6], seq[i + 4], fasta)
    assert key == [(c, i - 1, seq[i - 1] + "T", seq[i - 1])]


def test_agrees_with_bcftools_isec(sim_dir):
    assert shutil.which("bcftools"), "needs Debian bcftools: apt-get install -y bcftools"
    for caller in ("bcftools_15x", "freebayes_15x"):
        ours = evaluate(sim_dir / "truth.vcf.gz", sim_dir / "peers" / f"{caller}.norm.vcf.gz",
                        sim_dir / "confident.bed", sim_dir / "ref.fa")
        isec = bcftools_isec_counts(sim_dir / "truth.vcf.gz", sim_dir / "peers" / f"{caller}.norm.vcf.gz",
                                    sim_dir / "confident.bed", sim_dir / "ref.fa")
        for kind in ("SNP", "INDEL"):
            assert (ours[kind]["TP"], ours[kind]["FP"], ours[kind]["FN"]) == tuple(
                isec[kind][k] for k in ("TP", "FP", "FN"))
