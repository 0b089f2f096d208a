"""DNA language models: tokenizers, BERT-style encoder + CNN baseline, masked-LM pretraining,
fine-tuning on GUE (Zhou et al., DNABERT-2, ICLR 2024) and prediction.

Modules: ``tokenizers`` (single-nucleotide, k-mer, BPE; Hugging Face format), ``model``,
``pretrain``, ``finetune``, ``predict``, ``data`` (GUE / FASTA readers), ``cli``.
"""
