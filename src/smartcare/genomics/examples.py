"""Stage 2: encode each candidate allele as a pileup tensor (DeepVariant-style, Poplin et al. 2018).

One example per (site, alt allele): a tensor ``(C, R, W)`` with ``C`` channels, up to ``R`` reads (rows)
and a ``W``-bp window centred on the site, plus a small vector of site summaries (allele fraction, depth,
indel length, repeat span and the classical genotype posterior). Examples are written as ``.npz`` with a
side record ``<name>.example_info.json`` (version, shape, channels, window); the call stage refuses
examples whose side record does not match what its model expects.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pysam

from smartcare.core.errors import SmartcareError
from smartcare.genomics.candidates import Candidate, CandidateConfig, SitePileup, pileup_region
from smartcare.genomics.genotype import allele_posteriors
from smartcare.genomics.inputs import Region
from smartcare.genomics.reads import OTHER, Reference

EXAMPLES_VERSION = "2"
CHANNELS = ("reference_base", "read_base", "base_quality", "mapping_quality", "strand",
            "supports_allele", "differs_from_reference")
FEATURES = ("classical_log10_p0", "classical_log10_p1", "classical_log10_p2", "allele_fraction", "log_depth",
            "is_indel", "indel_length", "repeat_span", "other_alleles")
_BASE_CODE = np.zeros(256, np.float32)
for _b, _v in zip(b"ACGTN-", (0.25, 0.5, 0.75, 1.0, 0.1, -1.0), strict=True):
    _BASE_CODE[_b] = _v


LOG10_FLOOR = 30.0  # classical posteriors are stored as max(log10 p, -30) / 10


def classical_probs(features: np.ndarray) -> np.ndarray:
    """The classical ``P(copies = 0, 1, 2)`` stored in the first three features: (N, 3)."""
    return np.power(10.0, features[:, :3].astype(np.float64) * 10.0)


@dataclass(frozen=True)
class ExampleConfig:
    """Shape of the pileup tensor."""

    window: int = 33  # bp, odd; the site sits in the middle column
    max_reads: int = 32  # rows; deeper sites are thinned evenly, shallower ones zero-padded

    def info(self) -> dict:
        return {"version": EXAMPLES_VERSION, "shape": [len(CHANNELS), self.max_reads, self.window],
                "channels": list(CHANNELS), "features": list(FEATURES), **asdict(self)}


@dataclass
class Examples:
    """Encoded examples: ``tensors`` (N, C, R, W), ``features`` (N, F), the candidate of each site and
    ``site_index``/``allele_index`` mapping every row back to its site and alt allele (1-based)."""

    tensors: np.ndarray
    features: np.ndarray
    candidates: list[Candidate]
    site_index: np.ndarray
    allele_index: np.ndarray
    info: dict


def _encode(site: SitePileup, alt: int, ref: Reference, cfg: ExampleConfig) -> np.ndarray:
    half = cfg.window // 2
    lo = site.candidate.pos - half
    tensor = np.zeros((len(CHANNELS), cfg.max_reads, cfg.window), np.float32)  # (C, R, W)
    refcodes = _BASE_CODE[np.frombuffer(ref.fetch(lo, lo + cfg.window).rjust(cfg.window, "N").encode(),
                                        np.uint8)]
    tensor[0] = refcodes[None, :]
    order = sorted(range(len(site.reads)), key=lambda i: (site.reads[i].start, site.reads[i].name))
    if len(order) > cfg.max_reads:
        order = [order[int(i)] for i in np.linspace(0, len(order) - 1, cfg.max_reads).round()]
    for row, i in enumerate(order):
        read, allele = site.reads[i], site.alleles[i]
        a, b = max(lo, read.start), min(lo + cfg.window, read.end)
        if a >= b:
            continue
        cols = slice(a - lo, b - lo)
        seg = slice(a - read.start, b - read.start)
        bases = read.bases[seg]
        tensor[1, row, cols] = _BASE_CODE[bases]
        tensor[2, row, cols] = np.minimum(read.quals[seg], 40) / 40.0
        tensor[3, row, cols] = min(read.mapq, 60) / 60.0
        tensor[4, row, cols] = -1.0 if read.reverse else 1.0
        tensor[5, row, cols] = 1.0 if allele == alt else (0.0 if allele < 0 and allele != OTHER else -1.0)
        differs = (bases != ref.arr[a - ref.offset:b - ref.offset]) & (bases != 0)
        tensor[6, row, cols] = (differs | read.ins_after[seg]).astype(np.float32)
    return tensor


def site_features(c: Candidate, alt: int, posterior: np.ndarray) -> np.ndarray:
    """Summary vector of one alt allele (order = ``FEATURES``)."""
    k = c.keys[alt - 1]
    dp = max(c.dp, 1)
    length = len(k[2]) - len(k[1])
    others = sum(c.ad[1:]) - c.ad[alt]
    logp = np.maximum(np.log10(np.maximum(posterior, 1e-300)), -LOG10_FLOOR) / 10.0
    return np.array([*logp, c.ad[alt] / dp, math.log1p(c.dp) / 4.0, float(length != 0),
                     length / 10.0, min(c.span_end - c.pos - 1, 40) / 20.0, others / dp], np.float32)


def encode_sites(sites: list[SitePileup], ref: Reference, cfg: ExampleConfig = ExampleConfig()) -> Examples:
    """Encode every alt allele of ``sites`` (all on the reference window ``ref``)."""
    tensors, feats, site_idx, allele_idx = [], [], [], []
    for s_i, site in enumerate(sites):
        post = allele_posteriors(site)
        for alt in range(1, len(site.candidate.alts) + 1):
            tensors.append(_encode(site, alt, ref, cfg))
            feats.append(site_features(site.candidate, alt, post[alt - 1]))
            site_idx.append(s_i)
            allele_idx.append(alt)
    shape = (0, len(CHANNELS), cfg.max_reads, cfg.window)
    return Examples(np.stack(tensors) if tensors else np.zeros(shape, np.float32),
                    np.stack(feats) if feats else np.zeros((0, len(FEATURES)), np.float32),
                    [s.candidate for s in sites], np.array(site_idx, np.int64),
                    np.array(allele_idx, np.int64), cfg.info())


def make_examples(bam: pysam.AlignmentFile, fasta: pysam.FastaFile, region: Region,
                  candidate_config: CandidateConfig = CandidateConfig(),
                  config: ExampleConfig = ExampleConfig()) -> Examples:
    """Candidates of ``region`` encoded as examples."""
    sites, ref = pileup_region(bam, fasta, region, candidate_config)
    return encode_sites(sites, ref, config)


def concat(parts: list[Examples]) -> Examples:
    """Join example sets made with one configuration (site indices are renumbered)."""
    if not parts:
        raise SmartcareError("no examples to join")
    offsets = np.cumsum([0] + [len(p.candidates) for p in parts[:-1]])
    return Examples(np.concatenate([p.tensors for p in parts]), np.concatenate([p.features for p in parts]),
                    [c for p in parts for c in p.candidates],
                    np.concatenate([p.site_index + o for p, o in zip(parts, offsets, strict=True)]),
                    np.concatenate([p.allele_index for p in parts]), parts[0].info)


def write_examples(ex: Examples, path: str | Path) -> Path:
    """Write ``path`` (.npz) and its side record ``<stem>.example_info.json``; returns the npz path."""
    path = Path(path)
    np.savez_compressed(path, tensors=ex.tensors.astype(np.float16), features=ex.features,
                        site_index=ex.site_index, allele_index=ex.allele_index,
                        candidates=np.array(json.dumps([c.to_dict() for c in ex.candidates])))
    info = dict(ex.info, n_examples=int(len(ex.tensors)))
    info_path(path).write_text(json.dumps(info, indent=2) + "\n")
    return path


def info_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".npz") + ".example_info.json")


def check_info(info: dict, expected: dict) -> None:
    """Raise ``SmartcareError`` when an examples side record does not match what a model expects."""
    for key in ("version", "shape", "channels", "features"):
        if info.get(key) != expected.get(key):
            raise SmartcareError(f"examples do not fit this model: {key} is {info.get(key)!r}, "
                                 f"the model expects {expected.get(key)!r}; re-run make_examples")


def read_examples(path: str | Path, expected: dict | None = None) -> Examples:
    """Read examples written by ``write_examples``, checking the side record against ``expected``."""
    path = Path(path)
    ipath = info_path(path)
    if not path.is_file() or not ipath.is_file():
        raise SmartcareError(f"examples {path} or their side record {ipath.name} are missing")
    info = json.loads(ipath.read_text())
    check_info(info, expected or ExampleConfig(info["window"], info["max_reads"]).info())
    with np.load(path) as z:
        if list(z["tensors"].shape[1:]) != info["shape"]:
            raise SmartcareError(f"examples {path} hold tensors of shape {z['tensors'].shape[1:]}, "
                                 f"their side record says {info['shape']}")
        cands = [Candidate.from_dict(d) for d in json.loads(str(z["candidates"]))]
        return Examples(z["tensors"].astype(np.float32), z["features"], cands, z["site_index"],
                        z["allele_index"], info)
