"""The whole caller: sharding does not change the VCF; calls are right on real and simulated reads."""

from __future__ import annotations

import gzip

import pytest
from typer.testing import CliRunner

from smartcare.genomics.cli import app
from smartcare.genomics.evaluate import evaluate
from smartcare.genomics.pipeline import RunConfig, call_variants

REGION = "chr20_10100001_10600000:301-39700"


def _body(path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line for line in fh if not line.startswith("##source")]


@pytest.mark.parametrize("model", ["classical", "variant-caller"])
def test_output_identical_however_sharded(tmp_path, small_bam, sim_dir, model):
    runner = CliRunner()
    outs = []
    for extra in (["--shard-size", "100000"], ["--shard-size", "7000", "--threads", "2"],
                  ["--shard-size", "2500"]):
        out = tmp_path / f"o{len(outs)}.vcf.gz"
        res = runner.invoke(app, ["call", "--ref", str(sim_dir / "ref.fa"), "--bam", str(small_bam),
                                  "--regions", REGION, "--out", str(out), "--model", model, *extra])
        assert res.exit_code == 0, res.output
        outs.append(_body(out))
    assert len(outs[0]) > 40
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("model", ["classical", "variant-caller"])
def test_small_region_accuracy(tmp_path, small_bam, sim_dir, model):
    out = tmp_path / "o.vcf.gz"
    res = CliRunner().invoke(app, ["call", "--ref", str(sim_dir / "ref.fa"), "--bam", str(small_bam),
                                   "--regions", REGION, "--out", str(out), "--model", model])
    assert res.exit_code == 0, res.output
    bed = tmp_path / "r.bed"
    bed.write_text("chr20_10100001_10600000\t300\t39700\n")
    res = CliRunner().invoke(app, ["evaluate", "--truth", str(sim_dir / "truth.vcf.gz"), "--query", str(out),
                                   "--bed", str(bed), "--ref", str(sim_dir / "ref.fa")])
    assert res.exit_code == 0, res.output
    got = evaluate(sim_dir / "truth.vcf.gz", out, bed, sim_dir / "ref.fa")
    assert got["SNP"]["f1"] >= 0.98 and got["SNP"]["gt_concordance"] >= 0.97
    assert got["INDEL"]["TP"] >= 3 and got["INDEL"]["FP"] <= 1


@pytest.mark.parametrize("model", ["classical", "variant-caller"])
def test_real_na12878_reads_find_the_giab_snps(tmp_path, shared_data, model):
    d = shared_data / "genomics" / "na12878_chr22_tiny_freebayes"
    out = tmp_path / "na12878.vcf.gz"
    res = CliRunner().invoke(app, ["call", "--ref", str(d / "q.fa"), "--bam", str(d / "NA12878.chr22.tiny.bam"),
                                   "--out", str(out), "--model", model])
    assert res.exit_code == 0, res.output
    got = evaluate(d / "truth.clean.vcf.gz", out, None, d / "q.fa")
    assert got["SNP"]["TP"] >= 13 and got["SNP"]["FP"] <= 2  # truth: 14 het SNPs, no indels


@pytest.mark.slow  # starting a local Ray cluster takes ~30 s on 2 shared cores
def test_ray_gives_the_local_result(small_bam, sim_dir):
    import ray  # the `dist` extra, installed by `make test`

    cfg = RunConfig(model="classical", shard_size=10_000)
    local, _ = call_variants(sim_dir / "ref.fa", small_bam, REGION, cfg)
    try:
        remote, _ = call_variants(sim_dir / "ref.fa", small_bam, REGION,
                                  RunConfig(model="classical", shard_size=10_000, use_ray=True, threads=2))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert [c.to_dict() for c in remote] == [c.to_dict() for c in local] and len(local) > 40


def test_stage_commands_hand_files_to_each_other(tmp_path, small_bam, sim_dir):
    runner = CliRunner()
    ex = tmp_path / "ex.npz"
    res = runner.invoke(app, ["make-examples", "--ref", str(sim_dir / "ref.fa"), "--bam", str(small_bam),
                              "--regions", REGION, "--out", str(ex)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ex.example_info.json").is_file()
    staged, whole = tmp_path / "staged.vcf.gz", tmp_path / "whole.vcf.gz"
    res = runner.invoke(app, ["call-examples", "--examples", str(ex), "--ref", str(sim_dir / "ref.fa"),
                              "--out", str(staged)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["call", "--ref", str(sim_dir / "ref.fa"), "--bam", str(small_bam),
                              "--regions", REGION, "--out", str(whole), "--shard-size", "1000000"])
    assert res.exit_code == 0, res.output
    assert _body(staged) == _body(whole)
    (tmp_path / "ex.example_info.json").write_text('{"version": "0", "shape": [1, 2, 3]}')
    res = runner.invoke(app, ["call-examples", "--examples", str(ex), "--ref", str(sim_dir / "ref.fa"),
                              "--out", str(tmp_path / "x.vcf.gz")])
    assert res.exit_code == 2 and "do not fit this model" in res.output
