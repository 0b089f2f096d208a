"""Average the class probabilities of trained classifiers (a deep ensemble: Lakshminarayanan et al.,
NeurIPS 2017) and ship the result as one model whose card records each member's training command."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from smartcare.core.errors import SmartcareError
from smartcare.core.registry import save_model
from smartcare.imaging.medmnist import available_splits, dataset_info, load_split


class ProbabilityEnsemble(nn.Module):
    """Members' softmax probabilities averaged; ``forward`` returns log-probabilities (B, C), so a softmax
    over the output gives the mean probability."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members])  # (M, B, C)
        return torch.log(probs.mean(dim=0).clamp_min(1e-12))  # (B, C)


def build_ensemble(config: dict) -> ProbabilityEnsemble:
    """Rebuild from ``{"members": [{"architecture", "network_config"}, ...]}`` (as in the card)."""
    from smartcare.imaging.networks import build_model

    members = config.get("members") or []
    if not members:
        raise SmartcareError("an ensemble config needs at least one member")
    return ProbabilityEnsemble([build_model(m["architecture"], m.get("network_config")) for m in members])


def make_ensemble(dataset: str, members: list[str], name: str, root: Path | str | None = None,
                  out_root: Path | str | None = None) -> dict:
    """Combine trained classifiers ``members`` (registry names under ``root``) into ``name``; returns the card.

    Validation (and test, where the split is public) metrics are recomputed for the ensemble.
    """
    from smartcare.imaging.train import evaluate, load_classifier

    loaded = [load_classifier(m, root) for m in members]
    info = dataset_info(dataset)
    for member, (_, card) in zip(members, loaded, strict=True):
        if card.get("classes") != list(info.classes):
            raise SmartcareError(f"member {member!r} was not trained on {dataset} classes {info.classes}")
    model = ProbabilityEnsemble([m for m, _ in loaded]).eval()
    # Weights ship as fp16; evaluate exactly what ships.
    model.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                           for k, v in model.state_dict().items()})
    split_metrics = {}
    for split in available_splits(dataset):
        if split != "train":
            x, y = load_split(dataset, split)
            split_metrics[split] = evaluate(model, x, y)
    first = loaded[0][1]
    card = {
        "name": name, "task": "image-classification", "architecture": "ensemble",
        "network_config": {"members": [{"architecture": c["architecture"], "network_config": c["network_config"]}
                                       for _, c in loaded]},
        "classes": list(info.classes), "input": first["input"], "training_data": first["training_data"],
        "split": {**first["split"], "selection": "each member: best val AUC epoch; ensemble chosen on val"},
        "command": f"smartcare imaging ensemble --dataset {dataset} --members {','.join(members)} --name {name}",
        "member_commands": [c["command"] if "--name" in c["command"] else f"{c['command']} --name {m}"
                            for m, (_, c) in zip(members, loaded, strict=True)],
        "member_metrics": {m: c["metrics"] for m, (_, c) in zip(members, loaded, strict=True)},
        "metrics": split_metrics, "seed": first["seed"],
        "published_test_baselines": info.baselines,
    }
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_model(name, tensors, card, root=out_root)  # fp16 on disk
    return card

