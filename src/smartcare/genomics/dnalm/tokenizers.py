"""DNA tokenizers in Hugging Face format: single-nucleotide, k-mer (k = 3..6) and BPE.

Every tokenizer is a ``transformers.PreTrainedTokenizerFast`` over a ``tokenizers`` pipeline, saved with
``save_pretrained`` (``tokenizer.json`` + ``tokenizer_config.json``) and reloaded with ``load_tokenizer`` or
plain ``PreTrainedTokenizerFast.from_pretrained``. Our spec (kind, k, overlapping) is written to
``dna_tokenizer.json`` beside them.

Symbol handling, the same for every kind (``clean_sequence`` in Python; the saved normalizer repeats the
case and IUPAC rules so the HF tokenizer alone behaves the same):

* lower case is upper-cased (soft-masked repeats in reference FASTA are lower case);
* IUPAC ambiguity codes (R Y S W K M B D H V), ``N`` and gap symbols ``-`` ``.`` become ``N``;
* whitespace and newlines are removed; any other character raises ``SmartcareError`` naming it;
* ``N`` is a token of its own in the single-nucleotide vocabulary; a k-mer containing ``N`` becomes
  ``[UNK]``; for BPE, runs of ``N`` are split off from ``ACGT`` stretches before merging (merges never
  cross an ``N``) and a run of any length is capped at ``max_n_run`` (default 8) symbols, so assembly gaps
  cannot flood the context window.

Overlapping k-mers (DNABERT, Ji et al. 2021) cannot be produced by a ``tokenizers`` pre-tokenizer, so
``DnaTokenizer`` writes them space-separated before calling the fast tokenizer (``WhitespaceSplit`` +
``WordLevel``); the saved HF tokenizer then expects that space-separated text. Non-overlapping k-mers use
the ``FixedLength`` pre-tokenizer (Nucleotide Transformer style; the last chunk may be shorter than k and
every ACGT string of length 1..k is in the vocabulary) and need no Python step.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from smartcare.core.errors import SmartcareError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
NUCLEOTIDES = "ACGT"
IUPAC_AMBIGUOUS = "RYSWKMBDHV"
SPEC_FILE = "dna_tokenizer.json"
_BAD = re.compile(r"[^ACGTN" + IUPAC_AMBIGUOUS + r"\-.]")


@dataclass(frozen=True)
class TokenizerSpec:
    """Which DNA tokenizer this is."""

    kind: str = "char"  # char (single nucleotide), kmer or bpe
    k: int = 0  # k-mer length (3..6) for kind="kmer", else 0
    overlapping: bool = False  # kmer only: stride 1 (True) or stride k (False)
    max_n_run: int = 8  # runs of N longer than this are shortened to this many symbols

    def __post_init__(self):
        if self.kind not in ("char", "kmer", "bpe"):
            raise SmartcareError(f"unknown tokenizer kind {self.kind!r}: use char, kmer or bpe")
        if self.kind == "kmer" and not 3 <= self.k <= 6:
            raise SmartcareError(f"k-mer length must be 3..6, got {self.k}")
        if self.max_n_run < 1:
            raise SmartcareError("max_n_run must be at least 1")


def clean_sequence(seq: str, max_n_run: int | None = None) -> str:
    """Upper-case ``seq``, map IUPAC codes and gaps to ``N``, drop whitespace, cap N runs.

    Raises ``SmartcareError`` naming the first character that is not a nucleotide symbol.
    """
    s = "".join(str(seq).split()).upper()
    bad = _BAD.search(s)
    if bad:
        raise SmartcareError(f"sequence contains {bad.group()!r} at position {bad.start()}: "
                             f"only A, C, G, T, N, IUPAC codes and gaps (-, .) are allowed")
    s = re.sub(r"[" + IUPAC_AMBIGUOUS + r"\-.]", "N", s)
    if max_n_run is not None:
        s = re.sub(f"N{{{max_n_run + 1},}}", "N" * max_n_run, s)
    return s


def _normalizer(max_n_run: int) -> normalizers.Normalizer:
    """Upper case, IUPAC/gaps -> N, whitespace removed, N runs capped (mirrors ``clean_sequence``)."""
    steps = [normalizers.Replace(c.lower(), c) for c in NUCLEOTIDES + "N" + IUPAC_AMBIGUOUS]
    steps += [normalizers.Replace(Regex(r"[" + IUPAC_AMBIGUOUS + r"\-.]"), "N"),
              normalizers.Replace(Regex(r"\s+"), ""),
              normalizers.Replace(Regex(f"N{{{max_n_run + 1},}}"), "N" * max_n_run)]
    return normalizers.Sequence(steps)


def _post_processor(tok: Tokenizer) -> processors.TemplateProcessing:
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    return processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                         special_tokens=[("[CLS]", cls), ("[SEP]", sep)])


def _wrap(tok: Tokenizer, spec: TokenizerSpec, model_max_length: int) -> DnaTokenizer:
    tok.post_processor = _post_processor(tok)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=model_max_length)
    return DnaTokenizer(fast, spec)


def _word_level(vocab_words: Iterable[str]) -> dict[str, int]:
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for w in vocab_words:
        vocab.setdefault(w, len(vocab))
    return vocab


def char_tokenizer(max_n_run: int = 8, model_max_length: int = 512) -> DnaTokenizer:
    """One token per nucleotide: vocabulary ``[PAD] [UNK] [CLS] [SEP] [MASK] A C G T N``."""
    tok = Tokenizer(models.WordLevel(_word_level(NUCLEOTIDES + "N"), unk_token="[UNK]"))
    tok.normalizer = _normalizer(max_n_run)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return _wrap(tok, TokenizerSpec("char", max_n_run=max_n_run), model_max_length)


def kmer_tokenizer(k: int, overlapping: bool = True, max_n_run: int = 8,
                   model_max_length: int = 512) -> DnaTokenizer:
    """k-mer tokenizer (k = 3..6): every ACGT k-mer is a token; k-mers holding N map to ``[UNK]``.

    Non-overlapping also holds every shorter ACGT string for the last chunk of a sequence.
    """
    spec = TokenizerSpec("kmer", k=k, overlapping=overlapping, max_n_run=max_n_run)
    lengths = [k] if overlapping else list(range(k, 0, -1))
    words = ["".join(p) for n in lengths for p in itertools.product(NUCLEOTIDES, repeat=n)]
    tok = Tokenizer(models.WordLevel(_word_level(words), unk_token="[UNK]"))
    if overlapping:
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    else:
        tok.normalizer = _normalizer(max_n_run)
        tok.pre_tokenizer = pre_tokenizers.FixedLength(k)
    tok.decoder = decoders.Fuse()
    return _wrap(tok, spec, model_max_length)


def train_bpe(sequences: Iterable[str], vocab_size: int = 512, max_n_run: int = 8,
              model_max_length: int = 512) -> DnaTokenizer:
    """Train a byte-pair-encoding DNA tokenizer (as DNABERT-2, Zhou et al. 2024) on ``sequences``.

    The alphabet is ``A C G T N``; ``N`` runs are isolated before merging.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 5:
        raise SmartcareError(f"BPE vocab_size {vocab_size} is below the alphabet size")
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = _normalizer(max_n_run)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("N+"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=list(NUCLEOTIDES + "N"), show_progress=False)
    tok.train_from_iterator((clean_sequence(s) for s in sequences), trainer=trainer)
    return _wrap(tok, TokenizerSpec("bpe", max_n_run=max_n_run), model_max_length)


def build_tokenizer(name: str, sequences: Sequence[str] | None = None, vocab_size: int = 512) -> DnaTokenizer:
    """Tokenizer by short name: ``char``, ``kmer3``..``kmer6`` (overlapping), ``kmer3n``..``kmer6n``
    (non-overlapping) or ``bpe`` (trained on ``sequences``)."""
    m = re.fullmatch(r"kmer([3-6])(n?)", name)
    if name == "char":
        return char_tokenizer()
    if m:
        return kmer_tokenizer(int(m.group(1)), overlapping=not m.group(2))
    if name == "bpe":
        if not sequences:
            raise SmartcareError("a BPE tokenizer needs training sequences")
        return train_bpe(sequences, vocab_size=vocab_size)
    raise SmartcareError(f"unknown tokenizer {name!r}: use char, kmer3..kmer6, kmer3n..kmer6n or bpe")


class DnaTokenizer:
    """A ``PreTrainedTokenizerFast`` plus the DNA rules above.

    ``hf`` is the Hugging Face tokenizer; ``spec`` records the kind. An external checkpoint's tokenizer
    (DNABERT-2 BPE, Nucleotide Transformer 6-mer) is wrapped with ``spec=None``: sequences are only cleaned.
    """

    def __init__(self, hf, spec: TokenizerSpec | None):
        self.hf = hf
        self.spec = spec

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def pad_token_id(self) -> int:
        return self.hf.pad_token_id

    def prepare(self, seq: str) -> str:
        """Cleaned text the HF tokenizer expects (space-separated k-mers for overlapping k-mers)."""
        max_n = self.spec.max_n_run if self.spec else None
        s = clean_sequence(seq, max_n)
        if self.spec and self.spec.kind == "kmer" and self.spec.overlapping:
            k = self.spec.k
            return " ".join(s[i:i + k] for i in range(max(len(s) - k + 1, 1)))
        return s

    def tokenize(self, seq: str) -> list[str]:
        ids = self.hf(self.prepare(seq), add_special_tokens=False)["input_ids"]
        return self.hf.convert_ids_to_tokens(ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Back to a nucleotide string (special tokens dropped; overlapping k-mers re-assembled)."""
        toks = [t for t in self.hf.convert_ids_to_tokens(list(ids)) if t not in SPECIAL_TOKENS]
        if self.spec and self.spec.kind == "kmer" and self.spec.overlapping:
            return toks[0] + "".join(t[-1] for t in toks[1:]) if toks else ""
        return "".join(toks)

    def __call__(self, seqs: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """Batch-encode: ``input_ids`` and ``attention_mask`` (B, T), T <= max_length, right-padded."""
        if isinstance(seqs, str):
            seqs = [seqs]
        enc = self.hf([self.prepare(s) for s in seqs], padding="longest", truncation=True,
                      max_length=max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def save(self, folder: Path | str) -> Path:
        """Write the HF files (``tokenizer.json``, ``tokenizer_config.json``) and ``dna_tokenizer.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(folder))
        if self.spec:
            (folder / SPEC_FILE).write_text(json.dumps(asdict(self.spec), indent=2) + "\n")
        return folder


def load_tokenizer(folder: Path | str) -> DnaTokenizer:
    """Load a tokenizer saved by ``DnaTokenizer.save`` or any HF tokenizer folder (``AutoTokenizer``)."""
    folder = Path(folder)
    spec_path = folder / SPEC_FILE
    if spec_path.is_file():
        spec = TokenizerSpec(**json.loads(spec_path.read_text()))
        return DnaTokenizer(PreTrainedTokenizerFast.from_pretrained(str(folder)), spec)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise SmartcareError(f"no tokenizer files (tokenizer.json or vocab.txt) in {folder}")
    from transformers import AutoTokenizer

    return DnaTokenizer(AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                      trust_remote_code=False), None)
