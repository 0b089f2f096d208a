"""`smartcare imaging segment` and `smartcare imaging train-segmenter` (thin wrappers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from smartcare.core.errors import SmartcareError


def _fmt(m: dict) -> str:
    parts = [f"F1 {m['f1']:.4f}", f"Acc {m['acc']:.4f}", f"Se {m['se']:.4f}", f"Sp {m['sp']:.4f}"]
    if m.get("auc") is not None:
        parts.append(f"AUC {m['auc']:.4f}")
    if m.get("f1_ci"):
        parts.append(f"F1 95% CI [{m['f1_ci'][0]:.4f}, {m['f1_ci'][1]:.4f}]")
    return "  ".join(parts)


def train_segmenter_cmd(
    epochs: Annotated[int, typer.Option(help="epochs of --steps batches; best validation F1 kept")] = 12,
    steps: Annotated[int, typer.Option(help="batches per epoch")] = 40,
    batch_size: Annotated[int, typer.Option(help="patches per batch")] = 16,
    patch: Annotated[int, typer.Option(help="patch side in pixels")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 2e-3,
    max_minutes: Annotated[float, typer.Option(help="stop starting epochs after this wall time (0 = none)")] = 0,
    channels: Annotated[str, typer.Option(help="U-Net feature maps per level, comma-separated")] = "8,16,32,64",
    tta: Annotated[bool, typer.Option(help="flip test-time augmentation for val/test scoring")] = True,
    resume: Annotated[bool, typer.Option(help="continue from --run-dir/last.pt")] = False,
    ship: Annotated[bool, typer.Option(help="score and write weights (--no-ship: checkpoint only)")] = True,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
    name: Annotated[str, typer.Option(help="registry name")] = "drive-vessels",
    weights_root: Annotated[Path | None, typer.Option(help="write <name>/ under this folder")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="keep last.pt and metrics.jsonl here")] = None,
) -> None:
    """Train the DRIVE vessel U-Net on patches and ship it as weights/<name>/ (card with test metrics)."""

    import torch

    from smartcare.imaging.segment import SegConfig
    from smartcare.imaging.segment_train import SegTrainSettings, train_segmenter

    torch.set_num_threads(threads)
    try:
        chans = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise SmartcareError(f"--channels must be comma-separated integers, not {channels!r}") from None
    config = SegConfig(channels=chans, strides=(1,) + (2,) * (len(chans) - 2))
    settings = SegTrainSettings(epochs=epochs, steps=steps, batch_size=batch_size, patch=patch, lr=lr,
                                max_minutes=max_minutes, seed=seed, device=device, name=name, tta=tta,
                                resume=resume, ship=ship)
    _, card = train_segmenter(settings, config, weights_root=weights_root, run_dir=run_dir, log=typer.echo)
    if not card:
        return
    m = card["metrics"]
    typer.echo(f"threshold {card['threshold']:.2f} (chosen on val ids {list(settings.val_ids)})")
    typer.echo(f"val  {_fmt(m['val'])}")
    typer.echo(f"test {_fmt(m['test'])}")
    typer.echo(f"2nd observer {_fmt(m['second_observer'])}")


def segment_cmd(
    input: Annotated[Path, typer.Option("--input", help="PNG/TIFF/JPEG fundus image, DICOM, NIfTI or NPZ")],
    out: Annotated[Path, typer.Option("--out", help="mask PNG to write, or a folder (one set per image)")],
    model: Annotated[str, typer.Option(help="shipped segmentation model")] = "drive-vessels",
    overlay: Annotated[Path | None, typer.Option(help="overlay PNG (single-image input)")] = None,
    key: Annotated[str | None, typer.Option(help="array name inside an NPZ (e.g. images)")] = None,
    tta: Annotated[bool, typer.Option(help="average predictions over flips")] = True,
    fhir: Annotated[Path | None, typer.Option(help="write FHIR R4 DiagnosticReport bundles (JSON list)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    allow_mismatch: Annotated[bool, typer.Option(help="run even when the input is not what the model expects "
                                                      "(a warning is kept with the result)")] = False,
) -> None:
    """Segment vessels: writes a binary mask, a probability map and an overlay PNG per image (and a DICOM
    SEG for DICOM input)."""

    from smartcare.imaging.segment_apply import segment_file, segmentation_bundles

    written = segment_file(input, out, model=model, overlay_path=overlay, key=key, tta=tta, device=device,
                           allow_mismatch=allow_mismatch)
    for row in written:
        for warning in row.get("warnings") or []:
            typer.echo(f"WARNING: {warning}", err=True)
        typer.echo(json.dumps(row))
    if fhir is not None:
        from smartcare.core.registry import load_card

        bundles = segmentation_bundles(written, load_card(model), input)
        fhir.parent.mkdir(parents=True, exist_ok=True)
        fhir.write_text(json.dumps(bundles, indent=1) + "\n")
        typer.echo(f"wrote {len(bundles)} FHIR bundle(s) to {fhir}")


def rescore_segmenter_cmd(
    model: Annotated[str, typer.Option(help="shipped segmentation model")] = "drive-vessels",
    tta: Annotated[bool, typer.Option(help="flip test-time augmentation")] = False,
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
) -> None:
    """Re-choose a shipped segmenter's threshold on its validation images and rescore test (card updated)."""

    import torch

    from smartcare.imaging.segment_train import rescore_segmenter

    torch.set_num_threads(threads)
    card = rescore_segmenter(model, tta=tta, log=typer.echo)
    m = card["metrics"]
    typer.echo(f"val  {_fmt(m['val'])}")
    typer.echo(f"test {_fmt(m['test'])}")
    typer.echo(f"2nd observer {_fmt(m['second_observer'])}")


def register(app: typer.Typer) -> None:
    """Add the segmentation commands to the `smartcare imaging` app."""
    app.command("segment")(segment_cmd)
    app.command("train-segmenter")(train_segmenter_cmd)
    app.command("rescore-segmenter")(rescore_segmenter_cmd)
