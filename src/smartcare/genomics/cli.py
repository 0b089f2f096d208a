"""`smartcare genomics ...` commands (thin layer over the Python API)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from smartcare.core.cli import CommandApp
from smartcare.genomics.dnalm.cli import app as dnalm_app

app = CommandApp(help="Genomics: variant calling, DNA language models.", no_args_is_help=True)
app.add_typer(dnalm_app, name="dnalm")


@app.command("call")
def call_cmd(
    ref: Annotated[Path, typer.Option("--ref", help="Reference FASTA (.fai built if missing).")],
    bam: Annotated[Path, typer.Option("--bam", help="Indexed BAM.")],
    out: Annotated[Path, typer.Option("--out", help="Output .vcf.gz (tabix index written beside it).")],
    regions: Annotated[str | None, typer.Option("--regions", help="BED file or chr:start-end.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Worker processes.")] = 1,
    model: Annotated[str, typer.Option("--model", help="variant-caller (network) or classical.")]
    = "variant-caller",
    ray: Annotated[bool, typer.Option("--ray", help="Shard across Ray (SMARTCARE_RAY_ADDRESS).")] = False,
    shard_size: Annotated[int, typer.Option("--shard-size", help="bp per shard.")] = 100_000,
    min_qual: Annotated[float, typer.Option("--min-qual", help="QUAL below this is FILTER=LowQual.")] = 3.0,
):
    """Call germline SNPs and indels from BAM + FASTA into a bgzipped, indexed VCF 4.2."""
    from smartcare.genomics.call import CallConfig
    from smartcare.genomics.pipeline import RunConfig, run

    path = run(ref, bam, out, regions, RunConfig(model=model, shard_size=shard_size, threads=threads,
                                                 use_ray=ray, call=CallConfig(min_qual=min_qual)))
    typer.echo(str(path))


@app.command("make-examples")
def make_examples_cmd(
    ref: Annotated[Path, typer.Option("--ref", help="Reference FASTA.")],
    bam: Annotated[Path, typer.Option("--bam", help="Indexed BAM.")],
    regions: Annotated[str, typer.Option("--regions", help="chr:start-end or BED.")],
    out: Annotated[Path, typer.Option("--out", help="Examples .npz (side record written beside it).")],
):
    """Stage 1+2 alone: candidates encoded as pileup tensors, with their side record."""
    from smartcare.genomics.examples import concat, make_examples, write_examples
    from smartcare.genomics.inputs import open_alignments, open_reference, parse_regions
    from smartcare.genomics.pipeline import sample_name

    fasta = open_reference(ref)
    with open_alignments(bam, fasta) as aln:
        parts = [make_examples(aln, fasta, r) for r in parse_regions(regions, fasta)]
        ex = concat(parts)
        ex.info = dict(ex.info, sample=sample_name(aln))
    typer.echo(str(write_examples(ex, out)))


@app.command("call-examples")
def call_examples_cmd(
    examples: Annotated[Path, typer.Option("--examples", help="Examples .npz from make-examples.")],
    ref: Annotated[Path, typer.Option("--ref", help="Reference FASTA (contig header).")],
    out: Annotated[Path, typer.Option("--out", help="Output .vcf.gz.")],
    model: Annotated[str, typer.Option("--model", help="variant-caller or classical.")] = "variant-caller",
):
    """Stages 3+4 alone: genotype examples (after checking their side record) and write the VCF."""
    from smartcare.genomics.call import call_examples, load_caller
    from smartcare.genomics.examples import read_examples
    from smartcare.genomics.inputs import open_reference
    from smartcare.genomics.vcf import write_vcf

    expected = None if model == "classical" else load_caller(model)[1]["examples"]
    ex = read_examples(examples, expected)
    fasta = open_reference(ref)
    contigs = list(zip(fasta.references, fasta.lengths, strict=True))
    typer.echo(str(write_vcf(call_examples(ex, model), out, contigs, model=model,
                             sample=ex.info.get("sample", "SAMPLE"))))


@app.command("evaluate")
def evaluate_cmd(
    truth: Annotated[Path, typer.Option("--truth", help="Truth VCF.")],
    query: Annotated[Path, typer.Option("--query", help="Query VCF (FILTER PASS or . counts).")],
    bed: Annotated[Path | None, typer.Option("--bed", help="Confident regions BED.")] = None,
    ref: Annotated[Path | None, typer.Option("--ref", help="Reference FASTA for left-alignment.")] = None,
):
    """Precision/recall/F1 and genotype concordance for SNPs and indels (JSON on stdout)."""
    from smartcare.genomics.evaluate import evaluate

    typer.echo(json.dumps(evaluate(truth, query, bed, ref), indent=2))


@app.command("train-caller")
def train_caller_cmd(
    ref: Annotated[Path, typer.Option("--ref", help="Reference FASTA of the training contig.")],
    bam: Annotated[list[Path], typer.Option("--bam", help="Training BAM (repeatable).")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth VCF.")],
    split_at: Annotated[int, typer.Option("--split-at", help="Train before, validate after.")] = 350_000,
    epochs: Annotated[int, typer.Option("--epochs", help="Maximum epochs.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    thin: Annotated[str, typer.Option("--thin", help="Read-keep fractions of extra training copies, "
                                      "comma-separated; empty for none.")] = "",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
    name: Annotated[str, typer.Option("--name", help="Model name under weights/.")] = "variant-caller",
):
    """Train the pileup CNN on a simulated BAM with truth; ships weights/<name>/ with its card."""
    import logging

    from smartcare.genomics.train import CallerTrainConfig, train_caller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    args = sys.argv[sys.argv.index("train-caller"):] if "train-caller" in sys.argv else ["train-caller"]
    command = "smartcare genomics " + " ".join(shlex.quote(a) for a in args)
    card = train_caller(ref, bam, truth, CallerTrainConfig(
        split_at=split_at, epochs=epochs, seed=seed,
        thin_fractions=tuple(float(x) for x in thin.split(",") if x.strip())),
                        device=device, command=command, name=name)
    typer.echo(json.dumps(card["metrics"], indent=2))


@app.command("compare-peers")
def compare_peers_cmd(
    ref: Annotated[Path, typer.Option("--ref", help="Reference FASTA.")],
    bam: Annotated[Path, typer.Option("--bam", help="Indexed BAM.")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth VCF.")],
    bed: Annotated[Path | None, typer.Option("--bed", help="Confident regions BED.")] = None,
    regions: Annotated[str | None, typer.Option("--regions", help="chr:start-end or BED to call in.")] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Keep the VCFs here.")] = None,
):
    """Run ours (network and classical), bcftools and freebayes on the same reads; print the table."""
    from smartcare.genomics.peers import compare_with_peers

    table = compare_with_peers(ref, bam, truth, bed, regions=regions, workdir=workdir)
    typer.echo(table.to_string(index=False))
