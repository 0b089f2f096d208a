"""Genomics fixtures: a small slice of the simulated 30x BAM (contig 1-40,000) and its reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pysam
import pytest

SLICE = 40_000  # bp of the simulated contig kept in the small BAM


@pytest.fixture(scope="session")
def sim_dir(shared_data: Path) -> Path:
    return shared_data / "genomics" / "sim_chr20_art30x"


@pytest.fixture(scope="session")
def contig(sim_dir: Path) -> str:
    return pysam.FastaFile(str(sim_dir / "ref.fa")).references[0]


@pytest.fixture(scope="session")
def small_bam(tmp_path_factory, sim_dir: Path, contig: str) -> Path:
    """Indexed BAM with the 30x reads overlapping the first 40 kb (real simulated reads)."""
    out = tmp_path_factory.mktemp("bam") / "small30x.bam"
    pysam.view("-b", "-o", str(out), str(sim_dir / "sim30x.bam"), f"{contig}:1-{SLICE}", catch_stdout=False)
    pysam.index(str(out))
    return out


@pytest.fixture(scope="session")
def ref_copy(tmp_path_factory, sim_dir: Path) -> Path:
    """The reference copied to a writable folder without its .fai."""
    out = tmp_path_factory.mktemp("ref") / "ref.fa"
    shutil.copy(sim_dir / "ref.fa", out)
    return out
