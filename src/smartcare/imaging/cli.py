"""`smartcare imaging ...` commands: thin wrappers over the plain Python API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartcare.core.cli import CommandApp
from smartcare.imaging import enhance_cli, segment_cli

app = CommandApp(help="Medical imaging: read studies, train and run classifiers.", no_args_is_help=True)
segment_cli.register(app)
enhance_cli.register(app)


def _echo_metrics(name: str, card: dict) -> None:
    """One line per split of a classifier card: AUC and ACC with their bootstrap intervals."""
    for split, m in card["metrics"].items():
        auc, acc = m["auc"], m["acc"]
        typer.echo(f"{name} {split}: AUC {auc[0]:.4f} [{auc[1]:.4f}, {auc[2]:.4f}]  "
                   f"ACC {acc[0]:.4f} [{acc[1]:.4f}, {acc[2]:.4f}]  (n={m['n']})")


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="pneumoniamnist or breastmnist")] = "pneumoniamnist",
    arch: Annotated[str, typer.Option(help="cnn (MONAI ResNet) or vit (ViT, MIM-pretrained)")] = "cnn",
    epochs: Annotated[int, typer.Option(help="supervised epochs")] = 30,
    pretrain_epochs: Annotated[int, typer.Option(help="SimMIM pretraining epochs (vit only)")] = 0,
    batch_size: Annotated[int, typer.Option(help="images per step")] = 128,
    lr: Annotated[float | None, typer.Option(help="peak learning rate (default per architecture)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    name: Annotated[str, typer.Option(help="registry name (default: the dataset name)")] = "",
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 1,
    weights_root: Annotated[Path | None, typer.Option(help="write weights/<name>/ under this folder")] = None,
) -> None:
    """Train a classifier and ship it as weights/<name>/ (model.safetensors + card.json)."""

    import torch

    from smartcare.imaging.train import TrainSettings
    from smartcare.imaging.train import train as run_training

    torch.set_num_threads(threads)
    settings = TrainSettings(dataset=dataset, arch=arch, epochs=epochs, pretrain_epochs=pretrain_epochs,
                             batch_size=batch_size, lr=lr, seed=seed, device=device, name=name)
    _, card = run_training(settings, weights_root=weights_root)
    _echo_metrics(card["name"], card)


@app.command()
def ensemble(
    members: Annotated[str, typer.Option(help="comma-separated registry names of trained classifiers")],
    dataset: Annotated[str, typer.Option(help="pneumoniamnist or breastmnist")] = "pneumoniamnist",
    name: Annotated[str, typer.Option(help="registry name of the ensemble")] = "pneumoniamnist",
    members_root: Annotated[Path | None, typer.Option(help="folder holding the members (default weights/)")] = None,
    weights_root: Annotated[Path | None, typer.Option(help="write weights/<name>/ under this folder")] = None,
) -> None:
    """Average trained classifiers' probabilities and ship the ensemble as weights/<name>/."""

    from smartcare.imaging.ensemble import make_ensemble

    card = make_ensemble(dataset, [m.strip() for m in members.split(",") if m.strip()], name,
                         root=members_root, out_root=weights_root)
    _echo_metrics(name, card)


@app.command()
def classify(
    input: Annotated[Path, typer.Option("--input", help="NPZ, PNG, DICOM file, or a folder of them")],
    out: Annotated[Path, typer.Option("--out", help="CSV: index, source, pred, p_0, p_1, ... (+ warnings if any)")],
    model: Annotated[str, typer.Option(help="shipped model name")] = "pneumoniamnist",
    key: Annotated[str | None, typer.Option(help="array name inside an NPZ (e.g. test_images)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    ray: Annotated[bool, typer.Option("--ray", help="spread chunks over Ray (SMARTCARE_RAY_ADDRESS)")] = False,
    fhir: Annotated[Path | None, typer.Option(help="also write FHIR R4 DiagnosticReport bundles (JSON list)")] = None,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="score inputs whose DICOM modality and channels both differ from what the "
        "model expects (otherwise refused)")] = False,
) -> None:
    """Classify images with a shipped model and write one CSV row per image.

    Each input is checked against the model card's ``expects`` (modality, channels): a mismatch is printed
    as a WARNING and kept in the CSV ``warnings`` column and the FHIR reports.
    """

    from smartcare.imaging.classify import classify_inputs

    table, headers = classify_inputs(model, input, key=key, device=device, use_ray=ray,
                                     allow_mismatch=allow_mismatch)
    for warning in dict.fromkeys(w for ws in table.get("warnings", []) if ws for w in ws.split(" | ")):
        typer.echo(f"WARNING: {warning}", err=True)
    bundles = _classification_bundles(model, table, headers) if fhir is not None else None
    _write_atomic(out, lambda tmp: table.to_csv(tmp, index=False))
    typer.echo(f"wrote {len(table)} predictions to {out}")
    if bundles is not None:
        import json

        _write_atomic(fhir, lambda tmp: tmp.write_text(json.dumps(bundles, indent=1) + "\n"))
        typer.echo(f"wrote {len(bundles)} FHIR bundle(s) to {fhir}")


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def _classification_bundles(model: str, table, headers) -> list[dict]:
    """One FHIR transaction Bundle per CSV row, with the DICOM patient/study/date where the input had them."""
    from smartcare.core.registry import load_card
    from smartcare.imaging.report import classification_report, dicom_context

    card = load_card(model)
    probs = table[[c for c in table.columns if c.startswith("p_")]].to_numpy()
    names = list(card.get("classes") or [str(k) for k in range(probs.shape[1])])
    return [classification_report(p, names, card, source=str(src), warnings=[w for w in ws.split(" | ") if w],
                                  **dicom_context(h))
            for p, src, ws, h in zip(probs, table["source"], table.get("warnings", [""] * len(table)), headers,
                                     strict=True)]


@app.command()
def info(path: Annotated[Path, typer.Argument(help="DICOM file or series folder, NIfTI, NRRD, PNG or NPZ")]) -> None:
    """Read an image and print its shape, spacing, origin and value range."""

    from smartcare.imaging.io import read_image

    vol = read_image(path)
    typer.echo(vol.describe())
