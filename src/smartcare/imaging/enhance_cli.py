"""`smartcare imaging enhance`, `train-denoiser` and `compare-denoisers` (thin wrappers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from smartcare.core.errors import SmartcareError


def print_table(table: dict, echo=typer.echo) -> None:
    """PSNR/SSIM per condition, image set and method."""
    for cond, groups in table.items():
        if cond == "images":
            continue
        for group, methods in groups.items():
            cells = "  ".join(f"{m} {v['psnr']:.2f}/{v['ssim']:.4f}" for m, v in methods.items())
            echo(f"{cond:12s} {group:6s} {cells}")


def enhance_cmd(
    input: Annotated[Path, typer.Option("--input", help="PNG/TIFF/JPEG, DICOM, NIfTI or NPZ image(s)")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write (single image) or a folder")],
    model: Annotated[str, typer.Option(help="shipped denoising model: denoise (BM3D-guided, runs BM3D first, "
                                            "2-4 s per 256 px image) or denoise-unet (no BM3D, fast)")] = "denoise",
    sigma: Annotated[float | None, typer.Option(help="Gaussian noise std on 0-255 (default: estimated)")] = None,
    poisson_peak: Annotated[float | None, typer.Option(help="photons at white, for Poisson noise")] = None,
    key: Annotated[str | None, typer.Option(help="array name inside an NPZ")] = None,
    self_ensemble: Annotated[bool | None, typer.Option(
        "--self-ensemble/--no-self-ensemble",
        help="average the 8 flips/rotations (default: on for the BM3D-guided model, +13% time; off for "
             "denoise-unet, where it is 8x the cost)")] = None,
    adapt_steps: Annotated[int, typer.Option(help="first adapt the model to each image itself (needs --sigma; "
                                                   "unguided models only; 100 tested: ~+0.1 dB on CT, "
                                                   "~12 s per 256 px image)")] = 0,
) -> None:
    """Denoise images with the shipped denoiser and write 8-bit PNGs."""

    from smartcare.imaging.enhance_apply import enhance_file

    for row in enhance_file(input, out, model=model, sigma=sigma, poisson_peak=poisson_peak, key=key,
                            self_ensemble=self_ensemble, adapt_steps=adapt_steps):
        typer.echo(json.dumps(row))


def train_denoiser_cmd(
    epochs: Annotated[int, typer.Option(help="epochs of --steps batches; best validation PSNR kept")] = 20,
    steps: Annotated[int, typer.Option(help="batches per epoch")] = 40,
    batch_size: Annotated[int, typer.Option(help="patches per batch")] = 16,
    patch: Annotated[int, typer.Option(help="patch side in pixels (even)")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW (peak) learning rate")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="learning rate: constant or cosine (per step)")] = "constant",
    loss: Annotated[str, typer.Option(help="l2, l1, or l1-l2 (L1 for the first half, then L2)")] = "l2",
    max_minutes: Annotated[float, typer.Option(help="stop starting epochs after this wall time (0 = none)")] = 0,
    depth: Annotated[int, typer.Option(help="conv layers (at half resolution)")] = 8,
    width: Annotated[int, typer.Option(help="feature maps per layer")] = 32,
    arch: Annotated[str, typer.Option(help="ffdnet (conv stack) or unet (residual U-Net)")] = "ffdnet",
    channels: Annotated[str, typer.Option(help="unet widths per level, comma-separated")] = "32,64,128",
    blocks: Annotated[int, typer.Option(help="unet residual blocks per level and side")] = 1,
    guide: Annotated[str, typer.Option(help="unet: 'bm3d' to read and correct BM3D's estimate")] = "",
    bank: Annotated[int, typer.Option(help="guided: crops whose BM3D estimate is computed before training")] = 600,
    bank_crop: Annotated[int, typer.Option(help="guided: bank crop side in pixels (>= --patch)")] = 128,
    workers: Annotated[int, typer.Option(help="guided: processes that build the BM3D bank")] = 2,
    init: Annotated[str, typer.Option(help="guided: start from this shipped unguided unet denoiser (same "
                                                     "--channels; more --blocks start as identities)")] = "",
    data: Annotated[str, typer.Option(help="training set: drive+ct+other, drive+ctx+other (two more CT "
                                          "slices), or drive+ctsmall (the earlier one, that denoise-unet was "
                                          "trained on)")] = "drive+ct+other",
    compare: Annotated[bool, typer.Option(help="score noisy/NLM/BM3D/ours on the test crops")] = True,
    resume: Annotated[bool, typer.Option(help="continue from --run-dir/last.pt")] = False,
    ship: Annotated[bool, typer.Option(help="write weights/<name>/ (--no-ship: train and evaluate only)")] = True,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
    name: Annotated[str, typer.Option(help="registry name")] = "denoise",
    weights_root: Annotated[Path | None, typer.Option(help="write <name>/ under this folder")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="keep last.pt and metrics.jsonl here")] = None,
) -> None:
    """Train the denoiser and ship it as weights/<name>/ (card with the comparison table) unless --no-ship."""

    import torch

    from smartcare.imaging.enhance import DenoiseConfig
    from smartcare.imaging.enhance_train import DenoiseTrainSettings, train_denoiser

    torch.set_num_threads(threads)
    try:
        widths = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise SmartcareError(f"--channels {channels!r} is not a comma-separated list of integers") from None
    settings = DenoiseTrainSettings(epochs=epochs, steps=steps, batch_size=batch_size, patch=patch, lr=lr,
                                    schedule=schedule, loss=loss, max_minutes=max_minutes, seed=seed,
                                    device=device, name=name, resume=resume, ship=ship, bank=bank,
                                    bank_crop=bank_crop, workers=workers, init=init, data=data)
    config = DenoiseConfig(depth=depth, width=width, arch=arch, channels=widths, blocks=blocks,
                           guide="" if guide.lower() in ("", "none") else guide.lower())
    _, card = train_denoiser(settings, config, weights_root=weights_root, run_dir=run_dir, log=typer.echo,
                             with_compare=compare)
    typer.echo(f"val PSNR (sigma 25): {card['metrics']['val']['psnr_sigma25']:.2f} dB")
    if "test" in card["metrics"]:
        print_table(card["metrics"]["test"])
    if run_dir is not None:  # the card also when not shipped, to ship or inspect later
        (run_dir / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    if not ship:
        typer.echo("--no-ship: weights were not written")


def compare_denoisers_cmd(
    model: Annotated[str, typer.Option(help="shipped denoising model")] = "denoise",
    out: Annotated[Path | None, typer.Option(help="also write the table as JSON here")] = None,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
    update_card: Annotated[bool, typer.Option(help="store the table as the card's test metrics")] = False,
) -> None:
    """Noisy input, non-local means, BM3D and the shipped model on the same noisy test crops (PSNR/SSIM)."""

    import torch

    from smartcare.imaging.enhance_apply import load_denoiser
    from smartcare.imaging.enhance_train import compare

    torch.set_num_threads(threads)
    net, card = load_denoiser(model)
    table = compare(net, seed=seed, log=typer.echo)
    print_table(table)
    if update_card:
        from smartcare.core.registry import load_tensors, save_model

        card["metrics"]["test"] = table
        card["compare_command"] = f"smartcare imaging compare-denoisers --model {model} --seed {seed}"
        save_model(model, load_tensors(model), card)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    """Add the enhancement commands to the `smartcare imaging` app."""
    app.command("enhance")(enhance_cmd)
    app.command("train-denoiser")(train_denoiser_cmd)
    app.command("compare-denoisers")(compare_denoisers_cmd)
