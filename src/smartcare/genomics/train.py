"""Train the pileup CNN on simulated reads with complete truth (``sim_chr20_art30x``).

The contig is split by position: candidates before ``split_at`` train, those after validate (and are
the held-out region of the peer comparison). Labels are the truth copies (0, 1, 2) of each candidate
alt allele after normalisation. Thinned copies of training pileups (lower depths) are optional: with them
the network over-called 2-read sites at 15x on validation, so the shipped model trains without them.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from smartcare.core import registry
from smartcare.core.training import TrainConfig, fit, seed_everything
from smartcare.genomics.call import MODEL_NAME, CallConfig, CallerConfig, PileupCNN, call_site, per_site, predict
from smartcare.genomics.candidates import CandidateConfig, SitePileup, _summarise, pileup_region
from smartcare.genomics.evaluate import Bed, load_variants, normalise, score
from smartcare.genomics.examples import ExampleConfig, Examples, classical_probs, concat, encode_sites
from smartcare.genomics.inputs import Region, open_alignments, open_reference, shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallerTrainConfig:
    """One training run of the variant caller."""

    split_at: int = 350_000  # contig position: train before, validate after
    end: int | None = None  # validation stops here (None: contig end)
    thin_fractions: tuple[float, ...] = ()  # extra thinned copies (read-keep fraction); () = none, see card
    epochs: int = 20  # upper bound
    batch_size: int = 64  # examples per step
    lr: float = 2e-3  # AdamW learning rate
    patience: int = 4  # early stopping on validation log-loss
    seed: int = 0  # seeds sampling and initialisation
    hidden: int = 16  # PileupCNN width
    min_fraction: float = 0.03  # candidate allele fraction for training (lower than calling: more negatives)


def thin(site: SitePileup, fraction: float, rng: random.Random) -> SitePileup:
    """The same site with each read kept with probability ``fraction`` (simulates lower depth)."""
    keep = [i for i in range(len(site.reads)) if rng.random() < fraction]
    reads = [site.reads[i] for i in keep]
    alleles = [site.alleles[i] for i in keep]
    c = site.candidate
    return SitePileup(_summarise(c.contig, c.pos, c.keys, c.span_end, reads, alleles), reads, alleles)


def labels_for(ex: Examples, truth: dict) -> np.ndarray:
    """Truth copies (0/1/2) of each example's alt allele."""
    out = np.zeros(len(ex.site_index), np.int64)
    for n, (s, a) in enumerate(zip(ex.site_index, ex.allele_index, strict=True)):
        c = ex.candidates[s]
        pos, r, alt = c.keys[a - 1]
        out[n] = truth.get((c.contig, pos, r, alt), 0)
    return out


def build_examples(ref: str, bams: list[str], region: Region, cfg: CallerTrainConfig,
                   augment: bool, ex_cfg: ExampleConfig = ExampleConfig()) -> Examples:
    """Examples of every BAM over ``region`` (thinned copies added when ``augment``)."""
    fasta = open_reference(ref)
    rng = random.Random(cfg.seed)
    parts = []
    for bam_path in bams:
        with open_alignments(bam_path, fasta) as bam:
            for piece in shard([region], 100_000):
                cand_cfg = CandidateConfig(min_snp_fraction=cfg.min_fraction, min_indel_fraction=cfg.min_fraction)
                sites, window = pileup_region(bam, fasta, piece, cand_cfg if augment else CandidateConfig())
                parts.append(encode_sites(sites, window, ex_cfg))
                if augment:
                    for f in cfg.thin_fractions:
                        parts.append(encode_sites([thin(s, f, rng) for s in sites], window, ex_cfg))
    return concat(parts)


def region_scores(ex: Examples, probs: np.ndarray | None, truth: dict, region: Region, fasta) -> dict:
    """SNP/INDEL F1 (and TP/FP/FN) of calls made from ``ex`` inside ``region``; ``probs=None`` uses the
    classical posteriors stored in the features."""
    if probs is None:
        probs = classical_probs(ex.features)
    query = {}
    for c, p in zip(ex.candidates, per_site(ex, probs), strict=True):
        call = call_site(c, p, CallConfig(emit_low_qual=False))
        for i, alt in enumerate(call.alts if call else [], 1):
            dosage = sum(1 for g in call.gt if g == i)
            for key in normalise(call.contig, call.pos, call.ref, alt, fasta) if dosage else []:
                query[key] = dosage
    res = score(truth, query, Bed.from_intervals([(region.contig, region.start, region.end)]))
    return {k: {m: res[k][m] for m in ("TP", "FP", "FN", "f1", "gt_concordance")} for k in ("SNP", "INDEL")}


def _loader(ex: Examples, y: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(ex.tensors), torch.from_numpy(ex.features),
                                        torch.from_numpy(y))
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g)


def _loss(model, batch):
    x, f, y = batch
    return torch.nn.functional.cross_entropy(model(x, f), y)


def _neg_logloss(model, loader, device) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, f, y in loader:
            total += torch.nn.functional.cross_entropy(model(x.to(device), f.to(device)), y.to(device),
                                                       reduction="sum").item()
            n += len(y)
    model.train()
    return -total / max(n, 1)


def train_caller(ref: str | Path, bams: list[str | Path], truth: str | Path,
                 cfg: CallerTrainConfig = CallerTrainConfig(), *, device: str = "cpu",
                 command: str = "", save: bool = True, name: str = MODEL_NAME,
                 weights_root: str | Path | None = None) -> dict:
    """Train, optionally ship ``weights/<name>/``, and return the card (with validation metrics)."""
    seed_everything(cfg.seed)
    torch.set_num_threads(1)  # shared CPUs; the network is small
    ref, bams = str(ref), [str(b) for b in bams]
    fasta = open_reference(ref)
    contig = fasta.references[0]
    length = min(cfg.end or fasta.lengths[0], fasta.lengths[0])
    truth_alleles = load_variants(truth, fasta, pass_only=False)
    t0 = time.perf_counter()
    train_ex = build_examples(ref, bams, Region(contig, 0, cfg.split_at), cfg, augment=True)
    val_parts = [build_examples(ref, [b], Region(contig, cfg.split_at, length), cfg, augment=False)
                 for b in bams]
    val_ex = concat(val_parts)
    log.info("examples: %d train, %d validation (%.0f s)", len(train_ex.tensors), len(val_ex.tensors),
             time.perf_counter() - t0)
    y_train, y_val = labels_for(train_ex, truth_alleles), labels_for(val_ex, truth_alleles)
    model = PileupCNN(CallerConfig(hidden=cfg.hidden))
    result = fit(model, _loader(train_ex, y_train, cfg.batch_size, True, cfg.seed),
                 _loader(val_ex, y_val, 512, False, cfg.seed), loss_fn=_loss, score_fn=_neg_logloss,
                 config=TrainConfig(epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, seed=cfg.seed,
                                    device=device, desc="train-caller"))
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(val_ex.tensors), torch.from_numpy(val_ex.features)).argmax(-1).numpy()
    classical = val_ex.features[:, :3].argmax(-1)
    val_region = Region(contig, cfg.split_at, length - 150)
    calling = {}
    for b, part in zip(bams, val_parts, strict=True):
        for label, probs in (("network", predict(model, part, part.info)), ("classical", None)):
            calling[f"{Path(b).stem}/{label}"] = region_scores(part, probs, truth_alleles, val_region, fasta)
    card = {
        "task": "germline variant calling: genotype (0/1/2 copies) of each candidate allele from a pileup",
        "architecture": "PileupCNN: per-read 1x5 convs, mean+max pooling over reads, 1D conv, MLP head "
                        "added to the classical (Li 2011) log-posterior",
        "config": asdict(model.config),
        "examples": train_ex.info,
        "training_data": {"dataset": "genomics/sim_chr20_art30x", "bams": [Path(b).name for b in bams],
                          "truth": Path(str(truth)).name, "thin_fractions": list(cfg.thin_fractions)},
        "split": {"contig": contig, "train": f"[0, {cfg.split_at})",
                  "validation": f"[{cfg.split_at}, {length})",
                  "train_examples": int(len(y_train)), "validation_examples": int(len(y_val))},
        "command": command,
        "metrics": {"validation": {
            "log_loss": round(-result.best_score, 4), "best_epoch": result.best_epoch,
            "genotype_accuracy": round(float((pred == y_val).mean()), 4),
            "classical_genotype_accuracy": round(float((classical == y_val).mean()), 4),
            "calling": calling}},
        "seed": cfg.seed,
        "train_config": asdict(replace(cfg)),
    }
    if save:
        registry.save_model(name, model.state_dict(), card, root=weights_root)
    return card
