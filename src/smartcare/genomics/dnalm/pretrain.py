"""Masked-LM pretraining of the DNA encoder (BERT, Devlin et al. 2019; DNABERT-2, Zhou et al. 2024).

Unlabeled DNA (``data.pretraining_documents``) is cut into random windows, tokenized and 15 % of the
tokens are masked (80 % ``[MASK]``, 10 % random token, 10 % kept). Training runs through
``smartcare.core.training.fit``: an "epoch" is ``steps_per_epoch`` optimizer steps, after which the
held-out masked-LM loss is logged to ``run_dir/metrics.jsonl`` and ``run_dir/last.pt`` is written, so a
run stopped at any point resumes with ``resume=True``. The result is a Hugging Face checkpoint folder
``run_dir/hf`` (``config.json``, ``model.safetensors``, tokenizer files) that ``finetune`` loads like any
external checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from smartcare.core.errors import SmartcareError
from smartcare.core.training import TrainConfig, TrainResult, fit
from smartcare.genomics.dnalm.model import EncoderConfig, build_mlm
from smartcare.genomics.dnalm.tokenizers import DnaTokenizer, build_tokenizer, load_tokenizer


@dataclass(frozen=True)
class PretrainConfig:
    """One masked-LM pretraining run."""

    run_dir: Path  # last.pt, metrics.jsonl, tokenizer/ and the final hf/ checkpoint go here
    tokenizer: str = "bpe"  # char, kmer3..kmer6(n) or bpe (trained on the pretraining documents)
    bpe_vocab: int = 512  # BPE vocabulary size
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # encoder size
    window_bp: int = 100  # nucleotides per training window
    max_tokens: int = 40  # token budget per window incl. [CLS]/[SEP]
    batch_size: int = 64  # windows per step
    steps_per_epoch: int = 200  # optimizer steps between validation + checkpoint
    epochs: int = 10  # upper bound on "epochs"
    max_minutes: float | None = None  # wall-clock cap for this invocation (None: no cap)
    lr: float = 5e-4  # AdamW learning rate
    mask_prob: float = 0.15  # fraction of tokens masked
    seed: int = 0  # seeds data sampling, masking and init
    device: str = "auto"  # cpu, cuda or auto
    resume: bool = False  # continue from run_dir/last.pt


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, tok: DnaTokenizer, prob: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: ``(masked_ids, labels)`` both (B, T); labels are -100 where nothing is predicted.

    Special tokens and padding are never masked; at least one token per batch is.
    """
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for tid in tok.hf.all_special_ids:
        special |= input_ids == tid
    candidates = attention_mask.bool() & ~special  # (B, T)
    chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & candidates
    if not chosen.any() and candidates.any():
        chosen[candidates.nonzero()[0].unbind()] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = tok.hf.mask_token_id
    rand_pos = chosen & (roll >= 0.8) & (roll < 0.9)
    n_special = len(tok.hf.all_special_ids)
    random_ids = torch.randint(n_special, tok.vocab_size, input_ids.shape, generator=generator)
    masked[rand_pos] = random_ids[rand_pos]
    return masked, labels


class WindowBatches:
    """Iterable of ``steps`` masked-LM batches of random windows from ``docs`` (length-weighted).

    Draws from torch's global RNG, which ``fit`` seeds and checkpoints, so a resumed run continues the
    same stream. Stops early once ``deadline`` (``time.time()`` value) has passed.
    """

    def __init__(self, docs: Sequence[str], tok: DnaTokenizer, cfg: PretrainConfig, steps: int,
                 deadline: float | None = None):
        self.docs, self.tok, self.cfg, self.steps, self.deadline = list(docs), tok, cfg, steps, deadline
        lengths = torch.tensor([len(d) for d in self.docs], dtype=torch.float64)
        self.weights = lengths / lengths.sum()
        self.stepped = False  # whether a batch was handed out since the last validation

    def __len__(self) -> int:
        return self.steps

    def sample(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        idx = torch.multinomial(self.weights, self.cfg.batch_size, replacement=True, generator=generator)
        windows = []
        for i in idx.tolist():
            doc = self.docs[i]
            span = max(len(doc) - self.cfg.window_bp, 0)
            start = int(torch.randint(0, span + 1, (1,), generator=generator))
            windows.append(doc[start:start + self.cfg.window_bp])
        enc = self.tok(windows, max_length=self.cfg.max_tokens)
        masked, labels = mask_tokens(enc["input_ids"], enc["attention_mask"], self.tok, self.cfg.mask_prob,
                                     generator)
        return {"input_ids": masked, "attention_mask": enc["attention_mask"], "labels": labels}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.steps):
            if self.deadline is not None and time.time() > self.deadline:
                return
            self.stepped = True
            yield self.sample()


def _mlm_loss(model, batch) -> torch.Tensor:
    return model(**batch).loss


def _neg_val_loss(model, val_batches, device) -> float:
    losses = [float(model(**{k: v.to(device) for k, v in b.items()}).loss) for b in val_batches]
    return -float(np.mean(losses))


def score_after_training(score_fn, train):
    """Past the wall-clock cap ``fit`` still runs its remaining (empty) epochs: repeat the last score then."""
    last: list[float] = []

    def score(model, loader, device) -> float:
        if not last or train.stepped:
            last[:] = [score_fn(model, loader, device)]
        train.stepped = False
        return last[0]

    return score


def pretrain(cfg: PretrainConfig, docs: Sequence[str] | None = None,
             val_docs: Sequence[str] | None = None) -> TrainResult:
    """Run (or resume) masked-LM pretraining; writes ``cfg.run_dir/hf``. Returns fit's ``TrainResult``.

    ``docs``/``val_docs`` default to ``data.pretraining_documents()`` (chr20 window + GUE train sequences).
    """
    if docs is None or val_docs is None:
        from smartcare.genomics.dnalm.data import pretraining_documents

        docs, val_docs = pretraining_documents()
    if not docs or not val_docs:
        raise SmartcareError("pretraining needs non-empty training and validation documents")
    run_dir = Path(cfg.run_dir)
    tok_dir = run_dir / "tokenizer"
    if cfg.resume and (tok_dir / "tokenizer.json").is_file():
        tok = load_tokenizer(tok_dir)
    else:
        tok = build_tokenizer(cfg.tokenizer, docs, vocab_size=cfg.bpe_vocab)
        tok.save(tok_dir)
    torch.manual_seed(cfg.seed)
    model = build_mlm(cfg.encoder, tok.vocab_size, tok.pad_token_id)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    val_sampler = WindowBatches(val_docs, tok, cfg, 1)
    val_batches = [val_sampler.sample(gen) for _ in range(8)]
    deadline = time.time() + 60 * cfg.max_minutes if cfg.max_minutes else None
    train = WindowBatches(docs, tok, cfg, cfg.steps_per_epoch, deadline)
    tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, weight_decay=0.01, patience=cfg.epochs, seed=cfg.seed,
                       device=cfg.device, run_dir=run_dir, resume=cfg.resume, desc="dnalm pretrain")
    result = fit(model, train, val_batches, loss_fn=_mlm_loss, score_fn=score_after_training(_neg_val_loss, train),
                 config=tcfg)
    hf_dir = run_dir / "hf"
    model.cpu().save_pretrained(str(hf_dir))
    tok.save(hf_dir)
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
               "best_val_mlm_loss": -result.best_score, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "history": result.history}
    (run_dir / "pretrain_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return result
