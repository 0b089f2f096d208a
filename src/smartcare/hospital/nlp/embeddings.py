"""Semantic search over notes with all-MiniLM-L6-v2 sentence embeddings (384-d, cosine similarity).

A ``NoteIndex`` keeps (id, text, embedding) rows in memory and saves them as one numpy blob (``.npz``);
:mod:`smartcare.hospital.nlp.vectorstore` keeps them in the FHIR database instead (what the HTTP API uses).
Long notes are split into overlapping word windows so that a passage, not only the note start, is
searchable; a note's score is its best window. Embeddings: Reimers & Gurevych, Sentence-BERT, EMNLP 2019.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from smartcare.core.errors import SmartcareError
from smartcare.hospital.nlp.vectorstore import chunk_spans

Encoder = Callable[[list[str]], np.ndarray]  # texts -> (N, D) L2-normalised


def minilm_encoder() -> Encoder:
    """The offline MiniLM encoder as a function texts -> (N, 384) normalised embeddings."""
    from smartcare.hospital.nlp.classify import embed, encoder

    model = encoder()
    return lambda texts: embed(texts, model, batch_size=32, max_seq_length=256)


def windows(text: str, size: int = 150, stride: int = 100) -> list[str]:
    """Overlapping windows of ``size`` words every ``stride`` words (the whole text if shorter)."""
    return [" ".join(text[a:b].split()) for a, b in chunk_spans(text, size, stride)] or [""]


class NoteIndex:
    """In-memory cosine index of note windows; ``save``/``load`` as .npz."""

    def __init__(self, encode: Encoder):
        self.encode = encode
        self.ids: list[str] = []  # one per window
        self.texts: dict[str, str] = {}
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # (W, D)
        self._lock = threading.Lock()

    def add(self, items: Sequence[tuple[str, str]]) -> int:
        """Index (note id, text) pairs (re-adding an id replaces it). Returns the number of windows added."""
        items = [(i, t) for i, t in items if t and t.strip()]
        if not items:
            return 0
        chunks = [(nid, w) for nid, text in items for w in windows(text)]
        vecs = self.encode([w for _, w in chunks])  # (W_new, D)
        with self._lock:
            new = {nid for nid, _ in items}
            keep = [k for k, nid in enumerate(self.ids) if nid not in new]
            old = self.vectors[keep] if len(self.ids) else np.zeros((0, vecs.shape[1]), np.float32)
            self.ids = [self.ids[k] for k in keep] + [nid for nid, _ in chunks]
            self.vectors = np.vstack([old, vecs]).astype(np.float32)  # (W, D)
            self.texts.update(dict(items))
        return len(chunks)

    def search(self, query: str, k: int = 5) -> list[dict]:
        """Top-``k`` notes for ``query``: id, score (cosine of the best window) and a snippet."""
        if not query.strip():
            raise SmartcareError("query is empty")
        if not self.ids:
            return []
        q = self.encode([query])[0]  # (D,)
        sims = self.vectors @ q  # (W,)
        best: dict[str, tuple[float, int]] = {}
        for w, (nid, s) in enumerate(zip(self.ids, sims, strict=True)):
            if nid not in best or s > best[nid][0]:
                best[nid] = (float(s), w)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:k]
        return [{"id": nid, "score": round(s, 4), "snippet": self.texts[nid][:200]} for nid, (s, _) in ranked]

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        np.savez(
            path,
            vectors=self.vectors,
            ids=np.array(self.ids, dtype=object),
            note_ids=np.array(list(self.texts), dtype=object),
            note_texts=np.array(list(self.texts.values()), dtype=object),
        )
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: Path | str, encode: Encoder) -> NoteIndex:
        data = np.load(path, allow_pickle=True)
        idx = cls(encode)
        idx.vectors = data["vectors"]
        idx.ids = list(data["ids"])
        idx.texts = dict(zip(data["note_ids"], data["note_texts"], strict=True))
        return idx
