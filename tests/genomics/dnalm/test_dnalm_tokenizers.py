"""DNA tokenizers: round trips, symbol handling, Hugging Face save/load."""

from __future__ import annotations

import itertools

import pytest
from transformers import PreTrainedTokenizerFast

from smartcare.core.errors import SmartcareError
from smartcare.genomics.dnalm.tokenizers import (
    build_tokenizer,
    char_tokenizer,
    clean_sequence,
    kmer_tokenizer,
    load_tokenizer,
    train_bpe,
)

SEQ = "ACGTTGCAAGGCTTACCGATCGATTTACG"
NAMES = ["char", *(f"kmer{k}" for k in range(3, 7)), *(f"kmer{k}n" for k in range(3, 7))]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe([SEQ * 5, "GGGCCCATATTAGC" * 10, "ACGT" * 30], vocab_size=40)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_hf_reload(name, tmp_path):
    tok = build_tokenizer(name)
    ids = tok([SEQ], max_length=128)["input_ids"][0].tolist()
    assert ids[0] == tok.hf.cls_token_id and ids[-1] == tok.hf.sep_token_id
    assert tok.decode(ids) == SEQ
    assert tok.hf.unk_token_id not in ids
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.spec == tok.spec
    assert again([SEQ], max_length=128)["input_ids"][0].tolist() == ids
    plain = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))  # HF alone, no smartcare code
    assert plain(tok.prepare(SEQ))["input_ids"] == ids


@pytest.mark.parametrize("k", range(3, 7))
def test_kmer_token_counts(k):
    over, non = kmer_tokenizer(k, overlapping=True), kmer_tokenizer(k, overlapping=False)
    assert len(over.tokenize(SEQ)) == len(SEQ) - k + 1
    assert len(non.tokenize(SEQ)) == -(-len(SEQ) // k)
    assert over.vocab_size == 5 + 4 ** k
    assert non.vocab_size == 5 + sum(4 ** n for n in range(1, k + 1))
    assert all(len(t) == k for t in over.tokenize(SEQ))


def test_lower_case_and_iupac_and_gaps_are_explicit():
    assert clean_sequence("acgt rykm\n-.") == "ACGTNNNNNN"
    tok = char_tokenizer()
    assert tok.tokenize("acgtR") == ["A", "C", "G", "T", "N"]
    # the saved HF normalizer applies the same rules without our Python step
    assert tok.hf.tokenize("acgtr") == ["A", "C", "G", "T", "N"]
    k3 = kmer_tokenizer(3, overlapping=True)
    assert k3.tokenize("ACGNA") == ["ACG", "[UNK]", "[UNK]"]  # any k-mer holding N is [UNK]


def test_bad_symbols_raise_a_clear_error():
    with pytest.raises(SmartcareError, match=r"'X' at position 3"):
        clean_sequence("ACGXT")
    with pytest.raises(SmartcareError, match="'1'"):
        char_tokenizer()(["AC1"], max_length=10)


def test_n_runs_are_capped():
    assert clean_sequence("A" + "N" * 50 + "c", max_n_run=8) == "A" + "N" * 8 + "C"
    tok = char_tokenizer(max_n_run=4)
    assert tok.tokenize("AN" + "N" * 99) == ["A", "N", "N", "N", "N"]
    assert tok.hf.tokenize("AN" + "n" * 99) == ["A", "N", "N", "N", "N"]


def test_bpe_merges_never_cross_n_and_round_trip(bpe, tmp_path):
    pieces = bpe.tokenize("ACGTACGTNNNACGT")
    assert all(set(p) <= set("ACGT") or set(p) == {"N"} for p in pieces)
    assert any(len(p) > 1 for p in pieces)  # merges were learned
    ids = bpe([SEQ], max_length=64)["input_ids"][0].tolist()
    assert bpe.decode(ids) == SEQ
    bpe.save(tmp_path)
    assert load_tokenizer(tmp_path)([SEQ], max_length=64)["input_ids"][0].tolist() == ids


def test_batch_padding_and_truncation():
    tok = char_tokenizer()
    enc = tok(["ACGT", "A"], max_length=5)
    assert enc["input_ids"].shape == (2, 5)  # "ACGT" -> [CLS] A C G [SEP] after truncation
    assert enc["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert enc["input_ids"][1, -1].item() == tok.pad_token_id


def test_all_kmers_in_vocab():
    tok = kmer_tokenizer(3)
    vocab = tok.hf.get_vocab()
    assert all("".join(p) in vocab for p in itertools.product("ACGT", repeat=3))


def test_unknown_names_and_missing_folders(tmp_path):
    with pytest.raises(SmartcareError, match="unknown tokenizer"):
        build_tokenizer("kmer9")
    with pytest.raises(SmartcareError, match="no tokenizer files"):
        load_tokenizer(tmp_path)
