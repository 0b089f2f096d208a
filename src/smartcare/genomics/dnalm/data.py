"""Sequence data for the DNA language model: GUE task CSVs, FASTA files and prediction inputs.

GUE: Genome Understanding Evaluation (Zhou et al., DNABERT-2, ICLR 2024), CSV ``sequence,label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError

GUE_DATASET = "genomics/gue_dnabert2_subset"
CHR20_DATASET = "genomics/hg19_chr20_10mb_region_reference"
# GUE task name -> folder in the shared subset
GUE_TASKS = {"prom_core_all": "prom_prom_core_all", "prom_core_tata": "prom_prom_core_tata",
             "prom_300_tata": "prom_prom_300_tata", "tf/0": "tf_0", "mouse/0": "mouse_0"}


def gue_task_dir(task: str) -> Path:
    if task not in GUE_TASKS:
        raise SmartcareError(f"unknown GUE task {task!r}: use one of {', '.join(GUE_TASKS)}")
    return dataset_path(GUE_DATASET) / GUE_TASKS[task]


def load_gue(task: str, split: str) -> tuple[list[str], np.ndarray]:
    """Sequences and 0/1 labels of a GUE task split (``train`` or ``dev``; ``test`` is held out)."""
    path = gue_task_dir(task) / f"{split}.csv"
    if not path.is_file():
        raise SmartcareError(f"GUE {task} has no {split!r} split at {path} (train and dev are shipped)")
    df = pd.read_csv(path)
    return df["sequence"].astype(str).tolist(), df["label"].to_numpy(dtype=np.int64)


def read_fasta(path: Path | str) -> list[tuple[str, str]]:
    """``(id, sequence)`` records of a FASTA file; the id is the header up to the first space."""
    records: list[tuple[str, str]] = []
    name, chunks = None, []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(chunks)))
                name, chunks = (line[1:].split() or [""])[0], []
            elif line:
                if name is None:
                    raise SmartcareError(f"{path} is not FASTA: sequence before the first '>' header")
                chunks.append(line)
    if name is not None:
        records.append((name, "".join(chunks)))
    if not records:
        raise SmartcareError(f"{path} holds no FASTA records")
    return records


def pretraining_documents(tasks: tuple[str, ...] = tuple(GUE_TASKS), chunk_bp: int = 1000,
                          holdout_bp: int = 50_000) -> tuple[list[str], list[str]]:
    """Unlabeled DNA for masked-LM pretraining: ``(train_docs, val_docs)``.

    Train: the hg19 chr20 window (1.1 Mb) cut into ``chunk_bp`` pieces, minus its last ``holdout_bp``
    bases, plus the *train* sequences of the GUE ``tasks`` (labels dropped). Val: the held-out chr20 tail.
    """
    fa = dataset_path(CHR20_DATASET)
    records = read_fasta(next(fa.glob("*.fa")))
    chrom = "".join(seq for _, seq in records)
    train_part, val_part = chrom[:-holdout_bp], chrom[-holdout_bp:]
    cut = lambda s: [s[i:i + chunk_bp] for i in range(0, len(s), chunk_bp)]  # noqa: E731
    docs = cut(train_part)
    for task in tasks:
        docs += load_gue(task, "train")[0]
    return docs, cut(val_part)


def read_prediction_input(path: Path | str) -> tuple[list[str], list[str]]:
    """``(sequence_ids, sequences)`` from a CSV with a ``sequence`` column (optional ``sequence_id`` or
    ``id``) or an uncompressed FASTA file (``.fa``, ``.fasta``, ``.fna``); other inputs raise
    ``SmartcareError``."""
    path = Path(path)
    if not path.is_file():
        raise SmartcareError(f"input file {path} does not exist")
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise SmartcareError(f"cannot read CSV {path}: {err}") from err
        if "sequence" not in df.columns:
            raise SmartcareError(f"{path} has no 'sequence' column (columns: {', '.join(df.columns)})")
        id_col = next((c for c in ("sequence_id", "id") if c in df.columns), None)
        ids = df[id_col].tolist() if id_col else [str(i) for i in range(len(df))]
        return ids, df["sequence"].tolist()
    if path.suffix.lower() in (".fa", ".fasta", ".fna"):
        records = read_fasta(path)
        return [r[0] for r in records], [r[1] for r in records]
    raise SmartcareError(f"input {path} must be .csv (with a 'sequence' column) or FASTA (.fa/.fasta/.fna)")
