"""`smartcare genomics dnalm pretrain|finetune|predict` (thin layer over the Python API)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from smartcare.core.cli import CommandApp
from smartcare.core.errors import SmartcareError

app = CommandApp(help="DNA language model: masked-LM pretraining, GUE fine-tuning, prediction.",
                  no_args_is_help=True)

Device = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
Hidden = Annotated[int, typer.Option(help="Encoder hidden size.")]
Layers = Annotated[int, typer.Option(help="Encoder layers.")]
Heads = Annotated[int, typer.Option(help="Attention heads.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]


def _command() -> str:
    return "smartcare " + shlex.join(sys.argv[1:])


def _threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


@app.command()
def pretrain(run_dir: Annotated[Path, typer.Option(help="Run folder (checkpoint, log, hf/ result).")],
             tokenizer: Annotated[str, typer.Option(help="char, kmer3..kmer6(n) or bpe.")] = "bpe",
             bpe_vocab: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 512,
             hidden: Hidden = 128, layers: Layers = 4, heads: Heads = 4,
             window_bp: Annotated[int, typer.Option(help="Nucleotides per window.")] = 100,
             max_tokens: Annotated[int, typer.Option(help="Tokens per window.")] = 40,
             batch_size: Annotated[int, typer.Option(help="Windows per step.")] = 64,
             steps_per_epoch: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
             epochs: Annotated[int, typer.Option(help="Checkpoint intervals at most.")] = 10,
             max_minutes: Annotated[float, typer.Option(help="Wall-clock cap, 0 = none.")] = 0,
             lr: Annotated[float, typer.Option(help="Learning rate.")] = 5e-4,
             resume: Annotated[bool, typer.Option(help="Continue from run-dir/last.pt.")] = False,
             threads: Annotated[int, typer.Option(help="torch CPU threads, 0 = default.")] = 0,
             seed: Seed = 0, device: Device = "auto"):
    """Masked-LM pretraining on the chr20 window + unlabeled GUE train sequences."""
    from smartcare.genomics.dnalm.model import EncoderConfig
    from smartcare.genomics.dnalm.pretrain import PretrainConfig
    from smartcare.genomics.dnalm.pretrain import pretrain as run

    _threads(threads)
    enc = EncoderConfig(hidden=hidden, layers=layers, heads=heads, intermediate=4 * hidden)
    cfg = PretrainConfig(run_dir=run_dir, tokenizer=tokenizer, bpe_vocab=bpe_vocab, encoder=enc,
                         window_bp=window_bp, max_tokens=max_tokens, batch_size=batch_size,
                         steps_per_epoch=steps_per_epoch, epochs=epochs, max_minutes=max_minutes or None,
                         lr=lr, seed=seed, device=device, resume=resume)
    result = run(cfg)
    (run_dir / "command.txt").write_text(_command() + "\n")
    typer.echo(json.dumps({"best_val_mlm_loss": -result.best_score, "best_epoch": result.best_epoch,
                           "epochs_run": result.epochs_run, "checkpoint": str(run_dir / "hf")}))


@app.command()
def finetune(task: Annotated[str, typer.Option(help="GUE task, e.g. prom_core_all, tf/0.")] = "prom_core_all",
             model: Annotated[str, typer.Option(help="transformer or cnn.")] = "transformer",
             init: Annotated[Path | None, typer.Option(help="HF checkpoint folder to start from.")] = None,
             tokenizer: Annotated[str, typer.Option(help="Scratch: tokenizer folder or name.")] = "char",
             hidden: Hidden = 128, layers: Layers = 4, heads: Heads = 4,
             max_steps: Annotated[int, typer.Option(help="Optimizer steps (the budget).")] = 2000,
             eval_every: Annotated[int, typer.Option(help="Steps between validations.")] = 250,
             batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 64,
             max_tokens: Annotated[int, typer.Option(help="Token limit per sequence.")] = 512,
             lr: Annotated[float, typer.Option(help="Learning rate.")] = 3e-4,
             max_minutes: Annotated[float, typer.Option(help="Wall-clock cap, 0 = none.")] = 0,
             run_dir: Annotated[Path | None, typer.Option(help="Checkpoint folder (enables resume).")] = None,
             resume: Annotated[bool, typer.Option(help="Continue from run-dir/last.pt.")] = False,
             save_as: Annotated[str, typer.Option(help="Ship as weights/<name>/.")] = "",
             metrics_out: Annotated[Path | None, typer.Option(help="Write metrics JSON here.")] = None,
             threads: Annotated[int, typer.Option(help="torch CPU threads, 0 = default.")] = 0,
             seed: Seed = 0, device: Device = "auto"):
    """Fine-tune on a GUE task's train split; report MCC/AUC on dev."""
    from smartcare.genomics.dnalm.finetune import FinetuneConfig
    from smartcare.genomics.dnalm.finetune import finetune as run
    from smartcare.genomics.dnalm.model import EncoderConfig
    from smartcare.genomics.dnalm.predict import save_classifier

    _threads(threads)
    enc = EncoderConfig(hidden=hidden, layers=layers, heads=heads, intermediate=4 * hidden)
    cfg = FinetuneConfig(task=task, model=model, init=init, tokenizer=tokenizer, encoder=enc,
                         max_steps=max_steps, eval_every=eval_every, batch_size=batch_size,
                         max_tokens=max_tokens, lr=lr, max_minutes=max_minutes or None, seed=seed,
                         device=device, run_dir=run_dir, resume=resume)
    out = run(cfg)
    summary = {"task": task, "model": model, "init": str(init) if init else None, "steps": out["steps"],
               "seconds": out["seconds"], "metrics": out["metrics"], "command": _command()}
    if metrics_out:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps(summary, indent=2) + "\n")
    if save_as:
        arch = ("CNN baseline (conv1d x3, single-nucleotide)" if model == "cnn"
                else f"BERT encoder ({out['model_config']['encoder'].get('model_type')}) + mean-pool head")
        card = {"task": f"GUE {task} binary classification (DNABERT-2 benchmark)", "architecture": arch,
                "training_data": f"GUE {task} train split (95 %; 5 % held out for model selection)"
                                 + (f"; encoder initialised from {init}" if init else ""),
                "split": "metrics on GUE dev (not used for selection); GUE test held out",
                "command": _command(), "metrics": out["metrics"], "seed": seed,
                "steps": out["steps"], "train_seconds": out["seconds"]}
        save_classifier(save_as, out["model"], out["tokenizer"], out["model_config"], card, max_tokens)
    typer.echo(json.dumps(summary))


@app.command()
def predict(model: Annotated[str, typer.Option(help="Shipped model name or model folder.")],
            input: Annotated[Path, typer.Option("--input", help="CSV with a 'sequence' column, or FASTA.")],
            out: Annotated[Path, typer.Option(help="Output CSV.")],
            batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 256):
    """Predict class probabilities: columns index, sequence_id, pred, p_0, p_1."""
    from smartcare.genomics.dnalm.data import read_prediction_input
    from smartcare.genomics.dnalm.predict import load_classifier
    from smartcare.genomics.dnalm.predict import predict as run

    ids, seqs = read_prediction_input(input)
    clf = load_classifier(model)
    df = run(clf, seqs, ids, batch_size=batch_size)
    if out.suffix.lower() != ".csv":
        raise SmartcareError(f"--out must be a .csv file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(out)
    typer.echo(f"wrote {len(df)} predictions to {out}")
