"""ConText assertion of a target mention: negated, historical, hypothetical, experiencer.

Runs medspaCy's ConText (Harkema et al., J Biomed Inform 2009;42:839-851) with the rules in
``resources/context_rules.json`` (NegEx / genConText triggers, see ``rules.py``) over a spaCy English
tokenizer. ``annotate(sentence, target)`` locates the target (case-insensitive, else by its longest word
run found in the sentence) and reads the modifiers ConText attaches to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

RESOURCES = Path(__file__).with_name("resources")


@dataclass
class Assertion:
    """ConText attributes of one target mention; ``start``/``end`` are character offsets (-1 if not found)."""

    target: str
    start: int
    end: int
    negated: int
    historical: int
    hypothetical: int
    possible: int
    experiencer: str  # "patient" | "other"
    modifiers: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def load_rules(path: Path | str = RESOURCES / "context_rules.json"):
    """medspaCy ConTextRule objects from a rules JSON file."""
    from medspacy.context import ConTextRule

    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for r in doc["context_rules"]:
        term = set(r.get("terminated_by", []))
        if r["category"] in ("HISTORICAL", "HYPOTHETICAL", "FAMILY"):
            term.add(f"{r['category']}_TERM")  # genConText conjunctions end these scopes
        out.append(ConTextRule(r["literal"], r["category"], direction=r["direction"], terminated_by=term or None))
    return out


@cache
def context_pipeline(rules_path: str | None = None):
    """A blank English spaCy pipeline with medspaCy ConText loaded with our rules (cached)."""
    import medspacy  # noqa: F401  (registers the medspacy_* factories)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("smartcare_layout_breaks")
    context = nlp.add_pipe("medspacy_context", config={"rules": None})
    if rules_path:
        context.add(load_rules(rules_path))
    else:
        context.add(load_rules(RESOURCES / "context_rules.json") + load_rules(RESOURCES / "context_rules_extra.json"))
    return nlp


@Language.component("smartcare_layout_breaks")
def layout_breaks(doc: Doc) -> Doc:
    """Start a sentence after a layout break (a newline token, see ``normalize``)."""
    for i in range(1, len(doc)):
        if "\n" in doc[i - 1].text:
            doc[i].is_sent_start = True
    return doc


def normalize(text: str) -> tuple[str, list[int]]:
    """Whitespace runs collapsed: a newline or 5+ spaces (a layout break) -> "\n", else one space.

    Returns the new text and, per kept character, its offset in ``text`` (plus one past the end).
    """
    out, index = [], []
    i = 0
    while i < len(text):
        if text[i].isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            run = text[i:j]
            out.append("\n" if "\n" in run or len(run) >= 5 else " ")
            index.append(i)
            i = j
        else:
            out.append(text[i])
            index.append(i)
            i += 1
    index.append(len(text))
    return "".join(out), index


def find_target(text: str, target: str) -> tuple[int, int]:
    """Character span of ``target`` in ``text``: exact (case-insensitive), else its longest word run; (-1, -1)."""
    low, t = text.lower(), target.lower().strip()
    i = low.find(t)
    if t and i >= 0:
        return i, i + len(t)
    words = re.findall(r"\w+", t)
    for n in range(len(words), 0, -1):
        for k in range(len(words) - n + 1):
            pat = r"\b" + r"\W+".join(re.escape(w) for w in words[k : k + n]) + r"\b"
            m = re.search(pat, low)
            if m and len(m.group(0)) >= 3:
                return m.start(), m.end()
    return -1, -1


def annotate(sentence: str, target: str, nlp=None) -> Assertion:
    """ConText attributes of ``target`` in ``sentence`` (a target not found gets all-zero attributes)."""
    nlp = nlp or context_pipeline()
    text, index = normalize(sentence)
    n_start, n_end = find_target(text, " ".join(target.split()))
    if n_start < 0:
        return Assertion(target, -1, -1, 0, 0, 0, 0, "patient", [])
    start, end = index[n_start], index[n_end - 1] + 1
    doc = nlp.make_doc(text)
    span = doc.char_span(n_start, n_end, label="TARGET", alignment_mode="expand")
    for name, proc in nlp.pipeline:
        if name == "medspacy_context":
            doc.ents = [Span(doc, span.start, span.end, label="TARGET")]
        doc = proc(doc)
    ent = doc.ents[0]
    # a trigger inside the target phrase ("no lymphadenopathy" as the whole target) does not modify it
    outside = [m for m in ent._.modifiers if not (m.modifier_span[0] >= ent.start and m.modifier_span[1] <= ent.end)]
    cats = {m.category.upper() for m in outside}
    mods = [f"{m.category}:{doc[m.modifier_span[0] : m.modifier_span[1]].text.lower()}" for m in outside]
    return Assertion(
        target=target,
        start=start,
        end=end,
        negated=int("NEGATED_EXISTENCE" in cats),
        historical=int("HISTORICAL" in cats),
        hypothetical=int("HYPOTHETICAL" in cats),
        possible=int("POSSIBLE_EXISTENCE" in cats),
        experiencer="other" if "FAMILY" in cats else "patient",
        modifiers=mods,
    )
