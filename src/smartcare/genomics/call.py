"""Stage 3: genotype likelihoods per candidate allele, from a small pileup CNN or the classical model.

The network reads the ``(C, R, W)`` pileup of one alt allele, pools over reads (mean and max, so row
order does not matter), convolves along the window and predicts ``P(copies = 0, 1, 2)`` of that allele.
Its logits are added to the classical log-posterior, so it learns a correction to Li (2011) rather than
genotyping from scratch. Multi-allelic sites combine their alleles in ``genotype.site_genotypes``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from smartcare.core import registry
from smartcare.genomics.candidates import Candidate
from smartcare.genomics.examples import CHANNELS, FEATURES, Examples, check_info, classical_probs
from smartcare.genomics.genotype import site_genotypes

MODEL_NAME = "variant-caller"


@dataclass(frozen=True)
class CallerConfig:
    """Architecture of ``PileupCNN``."""

    channels: int = len(CHANNELS)  # input channels of the pileup tensor
    features: int = len(FEATURES)  # site summary features
    hidden: int = 32  # convolution and head width
    kernel: int = 5  # width of the convolutions along the window


class PileupCNN(nn.Module):
    """Pileup ``(B, C, R, W)`` + features ``(B, F)`` -> logits ``(B, 3)`` over 0/1/2 alt copies."""

    def __init__(self, config: CallerConfig = CallerConfig()):
        super().__init__()
        h, k = config.hidden, config.kernel
        self.config = config
        self.read_conv = nn.Sequential(
            nn.Conv2d(config.channels, h, (1, k), padding=(0, k // 2)), nn.ReLU(),
            nn.Conv2d(h, h, (1, k), padding=(0, k // 2)), nn.ReLU())
        self.site_conv = nn.Sequential(nn.Conv1d(2 * h, h, k, padding=k // 2), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * h + config.features, h), nn.ReLU(), nn.Linear(h, 3))
        self.prior_weight = nn.Parameter(torch.ones(1))
        nn.init.zeros_(self.head[-1].weight)  # start as the classical model; training learns a correction
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        rows = (x[:, 1] != 0).any(-1).to(x.dtype)[:, None, :, None]  # (B, 1, R, 1) read present
        h = self.read_conv(x)  # (B, H, R, W)
        mean = (h * rows).sum(2) / rows.sum(2).clamp(min=1.0)  # (B, H, W)
        peak = (h * rows - (1.0 - rows) * 1e4).amax(2).clamp(min=0.0)  # (B, H, W)
        z = self.site_conv(torch.cat([mean, peak], 1))  # (B, H, W)
        centre = z[:, :, z.shape[-1] // 2]  # (B, H)
        pooled = z.amax(-1)  # (B, H)
        classical = feats[:, :3] * (10.0 * math.log(10.0))  # (B, 3) natural-log classical posterior
        return self.head(torch.cat([centre, pooled, feats], 1)) + self.prior_weight * classical


@dataclass
class VariantCall:
    """One called site, ready for VCF: 0-based ``pos``; ``gt`` indexes ``[ref] + alts``."""

    contig: str
    pos: int
    ref: str
    alts: list[str]
    gt: tuple[int, int]
    gq: int
    dp: int
    ad: list[int]
    pl: list[int]
    qual: float
    filter: str = "PASS"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CallConfig:
    """Post-processing of genotype likelihoods."""

    min_qual: float = 3.0  # sites below this QUAL (P(no variant) > 0.5) get FILTER=LowQual
    max_sor: float = 3.0  # SNP alt with GATK StrandOddsRatio above this ...
    min_bq_gap: float = 10.0  # ... and mean alt base quality this far below ref gets FILTER=StrandBias
    emit_low_qual: bool = True  # write LowQual sites (FILTER set) instead of dropping them


@functools.lru_cache(maxsize=4)
def load_caller(name: str = MODEL_NAME) -> tuple[PileupCNN, dict]:
    """The shipped network and its card (cached per process)."""
    card = registry.load_card(name)
    model = PileupCNN(CallerConfig(**card["config"]))
    model.load_state_dict(registry.load_tensors(name))
    model.eval()
    return model, card


def predict(model: PileupCNN, examples: Examples, expected_info: dict, batch_size: int = 256) -> np.ndarray:
    """``P(copies = 0, 1, 2)`` per example, shape (N, 3); checks the examples' side record first."""
    check_info(examples.info, expected_info)
    out = np.zeros((len(examples.tensors), 3), np.float64)
    with torch.no_grad():
        for s in range(0, len(out), batch_size):
            x = torch.from_numpy(examples.tensors[s:s + batch_size]).float()
            f = torch.from_numpy(examples.features[s:s + batch_size]).float()
            out[s:s + batch_size] = torch.softmax(model(x, f).double(), -1).numpy()
    return out


def per_site(examples: Examples, probs: np.ndarray) -> list[np.ndarray]:
    """Group per-example probabilities into one (n_alts, 3) array per site."""
    sites = [np.zeros((len(c.alts), 3)) for c in examples.candidates]
    for p, s, a in zip(probs, examples.site_index, examples.allele_index, strict=True):
        sites[s][a - 1] = p
    return sites


def strand_odds_ratio(ref_fwd: int, ref_rev: int, alt_fwd: int, alt_rev: int) -> float:
    """GATK StrandOddsRatio (symmetric odds ratio with +1 pseudocounts, corrected for ref imbalance)."""
    rf, rr, af, ar = ref_fwd + 1, ref_rev + 1, alt_fwd + 1, alt_rev + 1
    ratio = (rf * ar) / (rr * af)
    return math.log(ratio + 1 / ratio) + math.log(min(rf, rr) / max(rf, rr)) - math.log(min(af, ar) / max(af, ar))


def _strand_artifact(c: Candidate, alt: int, config: CallConfig) -> bool:
    """A SNP alt seen on one strand only and at low base quality: a systematic sequencing error."""
    if c.is_indel[alt - 1] or c.ad[alt] == 0:
        return False
    sor = strand_odds_ratio(c.forward[0], c.ad[0] - c.forward[0], c.forward[alt], c.ad[alt] - c.forward[alt])
    return sor > config.max_sor and c.mean_bq[alt] < c.mean_bq[0] - config.min_bq_gap


def _trim(ref: str, alts: list[str]) -> tuple[str, list[str]]:
    """Drop the shared trailing bases a smaller allele set no longer needs (VCF stays anchored)."""
    while len(ref) > 1 and all(len(a) > 1 for a in alts) and all(a[-1] == ref[-1] for a in alts):
        ref, alts = ref[:-1], [a[:-1] for a in alts]
    return ref, alts


def call_site(c: Candidate, allele_probs: np.ndarray,
              config: CallConfig = CallConfig()) -> VariantCall | None:
    """Genotype one candidate; ``None`` when the best genotype is hom-ref.

    Alt alleles absent from the called genotype are dropped and PL recomputed over the kept ones.
    """
    g = site_genotypes(allele_probs)
    if g.gt == (0, 0):
        return None
    keep = sorted({a for a in g.gt if a > 0})
    if len(keep) < len(c.alts):
        g = site_genotypes(allele_probs[[k - 1 for k in keep]])
        remap = {0: 0, **{k: i for i, k in enumerate(keep, 1)}}
        if g.gt == (0, 0):
            return None
        g.gt = tuple(sorted(remap.get(a, a) for a in g.gt))
    ref, alts = _trim(c.ref, [c.alts[k - 1] for k in keep])
    ad = [c.ad[0]] + [c.ad[k] for k in keep]
    filt = "PASS" if g.qual >= config.min_qual else "LowQual"
    if filt == "PASS" and any(_strand_artifact(c, k, config) for k in keep):
        filt = "StrandBias"
    if filt != "PASS" and not config.emit_low_qual:
        return None
    return VariantCall(c.contig, c.pos, ref, alts, g.gt, g.gq, c.dp, ad, g.pl, g.qual, filt)


def call_examples(examples: Examples, model: str = MODEL_NAME,
                  config: CallConfig = CallConfig()) -> list[VariantCall]:
    """Calls for encoded examples with the named network, or ``"classical"`` (the posteriors already in
    the examples' features, no network)."""
    if model == "classical":
        site_probs = per_site(examples, classical_probs(examples.features))
    else:
        net, card = load_caller(model)
        site_probs = per_site(examples, predict(net, examples, card["examples"]))
    calls = [call_site(c, p, config) for c, p in zip(examples.candidates, site_probs, strict=True)]
    return [c for c in calls if c is not None]
