"""The whole caller: regions -> shards -> (candidates -> examples -> call) per shard -> one VCF.

Shards are fixed-size pieces of the requested regions. Each shard owns the candidate positions inside
it and reads a padded window around it, so the calls of a shard do not depend on which process runs it
or how many there are: local processes (``threads``) and Ray (``use_ray``) give the same VCF.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pysam
import torch

from smartcare.core.distributed import ray_map
from smartcare.core.errors import SmartcareError
from smartcare.genomics.call import MODEL_NAME, CallConfig, VariantCall, call_examples, call_site
from smartcare.genomics.candidates import CandidateConfig, pileup_region
from smartcare.genomics.examples import ExampleConfig, encode_sites
from smartcare.genomics.genotype import allele_posteriors
from smartcare.genomics.inputs import Region, open_alignments, open_reference, parse_regions, shard
from smartcare.genomics.vcf import write_vcf


@dataclass(frozen=True)
class RunConfig:
    """One caller run."""

    model: str = MODEL_NAME  # shipped network name, or "classical"
    shard_size: int = 100_000  # bp per shard
    threads: int = 1  # local worker processes
    use_ray: bool = False  # run shards as Ray tasks (SMARTCARE_RAY_ADDRESS or a local cluster)
    candidates: CandidateConfig = CandidateConfig()  # candidate thresholds
    call: CallConfig = CallConfig()  # QUAL filter


def _example_config(model: str) -> ExampleConfig:
    if model == "classical":
        return ExampleConfig()
    from smartcare.genomics.call import load_caller

    card = load_caller(model)[1]
    return ExampleConfig(card["examples"]["window"], card["examples"]["max_reads"])


def call_shard(ref: str, bam: str, region: Region, config: RunConfig) -> list[VariantCall]:
    """Calls whose position lies in ``region`` (runs in a worker; opens its own file handles)."""
    torch.set_num_threads(1)
    fasta = open_reference(ref)
    with open_alignments(bam, fasta) as aln:
        sites, window = pileup_region(aln, fasta, region, config.candidates)
    if config.model == "classical":  # no tensors needed
        calls = [call_site(s.candidate, allele_posteriors(s), config.call) for s in sites]
        return [c for c in calls if c is not None]
    ex = encode_sites(sites, window, _example_config(config.model))
    return call_examples(ex, config.model, config.call)


def _ray_call(ref, bam, shards, config):
    return ray_map(partial(call_shard, ref, bam, config=config), shards, num_cpus=config.threads)


def call_variants(ref: str | Path, bam: str | Path, regions: str | Path | None = None,
                  config: RunConfig = RunConfig()) -> tuple[list[VariantCall], list[tuple[str, int]]]:
    """Call variants over ``regions`` (BED path, ``chr:start-end`` or None for all contigs).

    Returns the calls sorted by position and the reference contigs. Inputs are checked here, before any
    worker starts; bad input raises ``SmartcareError``.
    """
    ref, bam = str(ref), str(bam)
    fasta = open_reference(ref)
    open_alignments(bam, fasta).close()
    if config.model != "classical":
        _example_config(config.model)  # fails early when the model is missing
    shards = shard(parse_regions(regions, fasta), config.shard_size)
    contigs = list(zip(fasta.references, fasta.lengths, strict=True))
    if config.use_ray:
        parts = _ray_call(ref, bam, shards, config)
    elif config.threads > 1 and len(shards) > 1:
        with ProcessPoolExecutor(max_workers=config.threads) as pool:
            parts = list(pool.map(call_shard, [ref] * len(shards), [bam] * len(shards), shards,
                                  [config] * len(shards)))
    else:
        parts = [call_shard(ref, bam, s, config) for s in shards]
    return [c for part in parts for c in part], contigs


def sample_name(bam: pysam.AlignmentFile) -> str:
    """The first @RG SM tag of a BAM, or ``SAMPLE``."""
    groups = bam.header.to_dict().get("RG", [])
    return next((g["SM"] for g in groups if "SM" in g), "SAMPLE")


def run(ref: str | Path, bam: str | Path, out: str | Path, regions: str | Path | None = None,
        config: RunConfig = RunConfig(), sample: str | None = None) -> Path:
    """Call variants and write ``out`` (.vcf.gz + .tbi); the sample name comes from the BAM's @RG SM."""
    if not str(out).endswith(".vcf.gz"):
        raise SmartcareError(f"output {out} must end in .vcf.gz")
    calls, contigs = call_variants(ref, bam, regions, config)
    if sample is None:
        with open_alignments(bam) as aln:
            sample = sample_name(aln)
    return write_vcf(calls, out, contigs, sample=sample, model=config.model, min_qual=config.call.min_qual)
