"""Model registry: shipped models in ``weights/<name>/`` (``card.json`` + ``model.safetensors``).

``load(name)`` loads a shipped model's tensors and card; ``load(path)`` loads a local Hugging Face-format
checkpoint folder (``config.json`` + weights) with ``transformers``, e.g. a user's DNABERT-2.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import smartcare
from smartcare.core.errors import ModelNotFoundError, SmartcareError
from smartcare.core.settings import get_settings

if TYPE_CHECKING:  # torch is imported lazily so that `smartcare --help` starts fast
    import torch

CARD_FIELDS = ("name", "task", "architecture", "parameters", "training_data", "split", "command",
               "metrics", "date", "smartcare_version", "seed")


@dataclass(frozen=True)
class LoadedModel:
    """A shipped model: its card and its tensors (a state dict)."""

    card: dict[str, Any]
    tensors: dict[str, torch.Tensor]


def weights_dir(root: Path | str | None = None) -> Path:
    return Path(root) if root is not None else Path(get_settings().weights)


def list_models(root: Path | str | None = None) -> list[dict[str, Any]]:
    """Cards of every shipped model, sorted by name (empty list when there are none)."""
    base = weights_dir(root)
    if not base.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(base.glob("*/card.json"))]


def load_card(name: str, root: Path | str | None = None) -> dict[str, Any]:
    path = weights_dir(root) / name / "card.json"
    if not path.is_file():
        known = ", ".join(c["name"] for c in list_models(root)) or "none"
        raise ModelNotFoundError(f"no shipped model named {name!r} (known: {known})")
    return json.loads(path.read_text())


def load_tensors(name: str, root: Path | str | None = None) -> dict[str, torch.Tensor]:
    load_card(name, root)
    path = weights_dir(root) / name / "model.safetensors"
    if not path.is_file():
        raise ModelNotFoundError(f"model {name!r} has a card but no model.safetensors at {path}")
    from safetensors.torch import load_file

    return load_file(str(path))


def save_model(name: str, tensors: dict[str, torch.Tensor], card: dict[str, Any],
               root: Path | str | None = None) -> Path:
    """Write ``weights/<name>/model.safetensors`` and ``card.json``; returns the folder.

    The card is completed with name, parameter count, date and smartcare version. It must carry the
    fields in ``CARD_FIELDS``; a missing one raises ``SmartcareError`` before anything is written.
    """
    card = dict(card)
    card.setdefault("name", name)
    card.setdefault("parameters", int(sum(t.numel() for t in tensors.values())))
    card.setdefault("date", dt.date.today().isoformat())
    card.setdefault("smartcare_version", smartcare.__version__)
    missing = [f for f in CARD_FIELDS if f not in card]
    if missing:
        raise SmartcareError(f"model card for {name!r} lacks {', '.join(missing)}")
    from safetensors.torch import save_file

    folder = weights_dir(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.safetensors.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(folder / "model.safetensors")
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return folder


def load(name_or_path: str | Path, root: Path | str | None = None):
    """Load a shipped model by name, or a local Hugging Face-format checkpoint folder by path.

    Returns ``LoadedModel`` for a shipped name; a ``transformers.PreTrainedModel`` for a checkpoint
    folder holding ``config.json``. Raises ``ModelNotFoundError`` when neither exists.
    """
    path = Path(name_or_path)
    if path.is_dir() and (path / "config.json").is_file():
        try:
            from transformers import AutoModel
        except ImportError as err:  # pragma: no cover - extra not installed
            raise SmartcareError(
                "loading a checkpoint folder needs `pip install smartcare[genomics]`") from err
        return AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    if path.is_dir() and (path / "card.json").is_file():
        from safetensors.torch import load_file

        return LoadedModel(json.loads((path / "card.json").read_text()),
                           load_file(str(path / "model.safetensors")))
    return LoadedModel(load_card(str(name_or_path), root), load_tensors(str(name_or_path), root))
