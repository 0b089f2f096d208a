"""Bad input gets a clear SmartcareError (and exit code 2 from the CLI), built from the real data."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from smartcare.core.errors import SmartcareError
from smartcare.genomics import inputs
from smartcare.genomics.cli import app
from smartcare.genomics.inputs import Region, open_alignments, open_reference, parse_regions, shard


def test_bam_without_index_is_refused(tmp_path, small_bam, sim_dir):
    bam = tmp_path / "noindex.bam"
    shutil.copy(small_bam, bam)
    with pytest.raises(SmartcareError, match="has no index"):
        open_alignments(bam, open_reference(sim_dir / "ref.fa"))


def test_truncated_bam_is_refused(tmp_path, small_bam, sim_dir):
    bam = tmp_path / "cut.bam"
    data = small_bam.read_bytes()
    bam.write_bytes(data[: len(data) // 2])
    shutil.copy(str(small_bam) + ".bai", str(bam) + ".bai")
    with pytest.raises(SmartcareError, match="truncated"):
        open_alignments(bam, open_reference(sim_dir / "ref.fa"))


def test_contig_mismatch_is_refused(tmp_path, small_bam, sim_dir):
    fa = tmp_path / "renamed.fa"
    text = (sim_dir / "ref.fa").read_text().split("\n", 1)[1]
    fa.write_text(">chr20\n" + text)
    with pytest.raises(SmartcareError, match="contig names do not match"):
        open_alignments(small_bam, open_reference(fa))


def test_fasta_index_built_when_writable(tmp_path, sim_dir):
    fa = tmp_path / "ref.fa"
    shutil.copy(sim_dir / "ref.fa", fa)
    assert not (tmp_path / "ref.fa.fai").exists()
    ref = open_reference(fa)
    assert (tmp_path / "ref.fa.fai").is_file()
    assert ref.lengths[0] == 500_000


def test_fasta_without_index_in_readonly_folder_is_refused(tmp_path, sim_dir, monkeypatch):
    fa = tmp_path / "ref.fa"
    shutil.copy(sim_dir / "ref.fa", fa)
    monkeypatch.setattr(inputs.os, "access", lambda *a, **k: False)  # root ignores chmod
    with pytest.raises(SmartcareError, match="no index .* not writable"):
        open_reference(fa)
    assert not (tmp_path / "ref.fa.fai").exists()


def test_cli_bad_bam_exits_2_without_traceback(tmp_path, small_bam, sim_dir):
    bam = tmp_path / "noindex.bam"
    shutil.copy(small_bam, bam)
    out = tmp_path / "out.vcf.gz"
    res = CliRunner().invoke(app, ["call", "--ref", str(sim_dir / "ref.fa"), "--bam", str(bam),
                                   "--out", str(out), "--model", "classical"])
    assert res.exit_code == 2
    assert "has no index" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_regions_parse_and_shard(sim_dir, contig):
    ref = open_reference(sim_dir / "ref.fa")
    assert parse_regions(f"{contig}:1,001-2,000", ref) == [Region(contig, 1000, 2000)]
    assert parse_regions(sim_dir / "confident.bed", ref) == [Region(contig, 150, 499_850)]
    with pytest.raises(SmartcareError, match="absent from the reference"):
        parse_regions("chrX:1-10", ref)
    assert shard([Region(contig, 0, 250)], 100) == [Region(contig, 0, 100), Region(contig, 100, 200),
                                                    Region(contig, 200, 250)]


def test_reference_contig_without_reads_is_fine(tmp_path, small_bam, sim_dir):
    fa = tmp_path / "plus.fa"
    fa.write_text((sim_dir / "ref.fa").read_text() + ">chrExtra\n" + "ACGT" * 500 + "\n")
    out = tmp_path / "o.vcf.gz"
    res = CliRunner().invoke(app, ["call", "--ref", str(fa), "--bam", str(small_bam), "--out", str(out),
                                   "--model", "classical", "--regions", "chrExtra:1-2000"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and (tmp_path / "o.vcf.gz.tbi").is_file()
