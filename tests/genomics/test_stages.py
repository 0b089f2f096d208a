"""Candidates -> examples -> call -> vcf on the small real BAM, with shapes and side records checked."""

from __future__ import annotations

import json

import numpy as np
import pysam
import pytest
import torch

from smartcare.core.errors import SmartcareError
from smartcare.genomics.call import CallerConfig, PileupCNN, VariantCall, call_site
from smartcare.genomics.candidates import find_candidates
from smartcare.genomics.evaluate import load_variants
from smartcare.genomics.examples import (
    CHANNELS,
    ExampleConfig,
    make_examples,
    read_examples,
    write_examples,
)
from smartcare.genomics.genotype import genotype_order, site_genotypes
from smartcare.genomics.inputs import Region, open_alignments, open_reference
from smartcare.genomics.reads import Reference, left_align
from smartcare.genomics.vcf import read_calls, write_vcf

SLICE = Region("chr20_10100001_10600000", 300, 39_700)


@pytest.fixture(scope="module")
def opened(small_bam, sim_dir):
    fasta = open_reference(sim_dir / "ref.fa")
    return open_alignments(small_bam, fasta), fasta


@pytest.fixture(scope="module")
def truth_in_slice(sim_dir, opened):
    truth = load_variants(sim_dir / "truth.vcf.gz", opened[1], pass_only=False)
    return {k: v for k, v in truth.items() if SLICE.start <= k[1] < SLICE.end}


def test_candidates_find_every_truth_allele(opened, truth_in_slice):
    bam, fasta = opened
    cands = find_candidates(bam, fasta, [SLICE])
    keys = {(c.contig, *k) for c in cands for k in c.keys}
    assert len(truth_in_slice) >= 40
    assert set(truth_in_slice) <= keys
    assert len(cands) < 2 * len(truth_in_slice)  # few false candidates at 30x
    for c in cands:
        assert len(c.ad) == len(c.alts) + 1 == len(c.forward) == len(c.mean_bq)
        assert c.dp == sum(c.ad) and all(0 <= f <= n for f, n in zip(c.forward, c.ad, strict=True))
        assert 0 < c.mean_mq <= 60


def test_left_align_moves_indel_to_start_of_repeat(sim_dir):
    fasta = pysam.FastaFile(str(sim_dir / "ref.fa"))
    ref = Reference(fasta, fasta.references[0], 0, 5000)
    i = ref.seq.find("AAAAAA", 100)
    assert left_align(ref, i + 3, "AA", "A") == (i - 1, ref.seq[i - 1] + "A", ref.seq[i - 1])
    assert left_align(ref, i + 5, "A", "AA") == (i - 1, ref.seq[i - 1], ref.seq[i - 1] + "A")


def test_examples_shape_side_record_roundtrip(opened, tmp_path):
    bam, fasta = opened
    cfg = ExampleConfig(window=21, max_reads=16)
    ex = make_examples(bam, fasta, Region(SLICE.contig, 300, 10_000), config=cfg)
    n = len(ex.allele_index)
    assert n >= len(ex.candidates) > 5
    assert ex.tensors.shape == (n, len(CHANNELS), 16, 21)
    assert ex.info["shape"] == [len(CHANNELS), 16, 21] and ex.info["channels"] == list(CHANNELS)
    centre = ex.tensors[:, CHANNELS.index("supports_allele"), :, 10]
    assert (centre == 1).any(axis=1).all()  # every alt allele has at least one supporting read
    path = write_examples(ex, tmp_path / "ex.npz")
    back = read_examples(path, cfg.info())
    assert np.allclose(back.tensors, ex.tensors, atol=1e-3) and back.candidates == ex.candidates
    with pytest.raises(SmartcareError, match="do not fit this model"):
        read_examples(path, ExampleConfig(window=33, max_reads=16).info())
    info = json.loads((tmp_path / "ex.example_info.json").read_text())
    info["channels"] = info["channels"][:-1]
    (tmp_path / "ex.example_info.json").write_text(json.dumps(info))
    with pytest.raises(SmartcareError, match="channels"):
        read_examples(path, cfg.info())


def test_tiny_cnn_shapes_and_read_order_invariance():
    torch.manual_seed(0)
    model = PileupCNN(CallerConfig(hidden=8)).eval()
    x = torch.randn(4, len(CHANNELS), 12, 15)
    f = torch.rand(4, CallerConfig().features)
    out = model(x, f)
    assert out.shape == (4, 3)
    perm = x[:, :, torch.randperm(12)]  # (B, C, R, W) with rows shuffled
    assert torch.allclose(model(perm, f), out, atol=1e-5)


def test_site_genotypes_multiallelic_order_and_pl():
    assert genotype_order(3) == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]
    probs = np.array([[0.01, 0.98, 0.01], [0.02, 0.97, 0.01]])  # both alts one copy -> 1/2
    g = site_genotypes(probs)
    assert g.gt == (1, 2) and len(g.pl) == 6 and g.pl[4] == 0 and min(g.pl) == 0 and g.qual > 20


def test_call_site_drops_alleles_not_in_genotype(opened):
    bam, fasta = opened
    c = find_candidates(bam, fasta, [SLICE])[0]
    c.ref, c.alts, c.ad, c.forward, c.mean_bq = "AT", ["GT", "A"], [5, 10, 1], [3, 5, 0], [35.0, 34.0, 30.0]
    c.keys = [(c.pos, "A", "G"), (c.pos, "AT", "A")]
    call = call_site(c, np.array([[0.001, 0.998, 0.001], [0.99, 0.009, 0.001]]))
    assert call.ref == "A" and call.alts == ["G"] and call.gt == (0, 1) and len(call.pl) == 3
    assert call.ad == [5, 10] and call.filter == "PASS"
    c.forward, c.mean_bq = [3, 0, 0], [35.0, 15.0, 30.0]  # alt only on the reverse strand, low quality
    assert call_site(c, np.array([[0.001, 0.998, 0.001], [0.99, 0.009, 0.001]])).filter == "StrandBias"


def test_vcf_written_indexed_and_readable(tmp_path, sim_dir):
    calls = [VariantCall("chr20_10100001_10600000", 99, "A", ["G"], (0, 1), 40, 30, [15, 15], [300, 0, 290],
                         250.5),
             VariantCall("chr20_10100001_10600000", 49, "AT", ["A"], (1, 1), 30, 20, [0, 20], [400, 60, 0],
                         8.0, "LowQual")]
    out = write_vcf(calls, tmp_path / "x.vcf.gz", [("chr20_10100001_10600000", 500_000)], sample="S1")
    assert (tmp_path / "x.vcf.gz.tbi").is_file()
    recs = read_calls(out)
    assert [r["pos"] for r in recs] == [49, 99]  # sorted
    assert recs[0]["filter"] == ["LowQual"] and recs[1]["gt"] == (0, 1) and recs[1]["pl"] == [300, 0, 290]
    with pysam.VariantFile(str(out)) as vf:
        assert vf.header.version == "VCFv4.2"
        assert list(vf.fetch("chr20_10100001_10600000", 90, 120))[0].samples["S1"]["AD"] == (15, 15)
    with pytest.raises(SmartcareError, match="must end in .vcf.gz"):
        write_vcf(calls, tmp_path / "x.vcf", [("chr20_10100001_10600000", 500_000)])
    assert not list(tmp_path.glob(".tmp-*"))
