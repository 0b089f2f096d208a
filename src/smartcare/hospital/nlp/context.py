"""ConText assertion of a target mention: negated, historical, hypothetical, experiencer.

Runs medspaCy's ConText (Harkema et al., J Biomed Inform 2009;42:839-851) with the rules in
``resources/context_rules.json`` (NegEx / genConText triggers, see ``rules.py``) and the smartcare additions
in ``resources/context_rules_extra.json`` (see ``resources/PROVENANCE.md``) over a spaCy English
tokenizer. ``annotate(sentence, target)`` locates the target (a word-bounded phrase, else a substring, else
its longest word run), masks it as in NegEx, and reads the modifiers ConText attaches to it.
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


RULE_FILES = ("context_rules.json", "context_rules_extra.json")
SCOPED = ("NEGATED_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "FAMILY")  # each has its own <CAT>_TERM


def load_rules(*paths: Path | str):
    """medspaCy ConTextRule objects from rules JSON files, later files overriding earlier ones.

    A rule dict holds ``literal``, ``category``, ``direction`` and optionally ``pattern`` (spaCy token
    pattern), ``max_scope`` (tokens), ``terminated_by``, ``also`` (further categories the trigger asserts,
    e.g. "former" is both negated and historical) and ``replaces`` (drop earlier rules with this literal).
    A category ``<CAT>_TERM`` (direction PSEUDO) ends only the scope of ``<CAT>`` triggers; TERMINATE ends all.
    """
    from medspacy.context import ConTextRule

    paths = paths or tuple(RESOURCES / f for f in RULE_FILES)
    dicts: list[dict] = []
    for path in paths:
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["context_rules"]:
            if r.get("replaces"):
                dicts = [d for d in dicts if d["literal"].lower() != r["literal"].lower()]
            dicts.append(r)
    dicts = _merge_terminators(dicts)
    combos = {r["category"] for r in dicts if r["category"].endswith("_TERM")}
    out = []
    for r in dicts:
        term = set(r.get("terminated_by", []))
        if r["category"] in SCOPED:
            term |= {c for c in combos if f"{r['category']}_TERM" in c.split("|")}
        out.append(
            ConTextRule(
                r["literal"],
                r["category"],
                pattern=r.get("pattern"),
                direction=r["direction"],
                max_scope=r.get("max_scope"),
                terminated_by=term or None,
                metadata={"also": r["also"]} if r.get("also") else None,
            )
        )
    return out


def _merge_terminators(dicts: list[dict]) -> list[dict]:
    """One rule per terminator literal: "presents" ends HISTORICAL and FAMILY scopes -> "FAMILY_TERM|HISTORICAL_TERM".

    medspaCy keeps one of two matches on the same tokens, so two same-literal terminators would lose one.
    """
    merged: dict[str, dict] = {}
    out = []
    for r in dicts:
        if not r["category"].endswith("_TERM") or r.get("pattern"):
            out.append(r)
            continue
        key = r["literal"].lower()
        if key in merged:
            cats = set(merged[key]["category"].split("|")) | {r["category"]}
            merged[key]["category"] = "|".join(sorted(cats))
        else:
            merged[key] = {**r}
            out.append(merged[key])
    return out


@cache
def context_pipeline(rules_path: str | None = None):
    """A blank English spaCy pipeline with medspaCy ConText loaded with our rules (cached)."""
    import medspacy  # noqa: F401  (registers the medspacy_* factories)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("smartcare_layout_breaks")
    context = nlp.add_pipe("medspacy_context", config={"rules": None})
    context.add(load_rules(rules_path) if rules_path else load_rules())
    return nlp


@Language.component("smartcare_layout_breaks")
def layout_breaks(doc: Doc) -> Doc:
    """Start a sentence after a layout break (a newline token, see ``normalize``) and at a heading.

    A heading is a run of at most four capitalised words ending in a colon ("Menstrual History:",
    "TOBACCO:") that follows punctuation, a lower-case word or the start of the text: section labels in a
    report end the scope of the triggers before them (NegEx scope stops at the sentence end).
    """
    for i in range(1, len(doc)):
        if "\n" in doc[i - 1].text:
            doc[i].is_sent_start = True
    for i, tok in enumerate(doc):
        if tok.text != ":" or i == 0:
            continue
        j = i
        while j > 0 and i - j < 5 and doc[j - 1].is_alpha and (doc[j - 1].is_title or doc[j - 1].is_upper):
            j -= 1
        if 0 < j < i and i - j <= 4 and not (doc[j - 1].is_alpha and (doc[j - 1].is_title or doc[j - 1].is_upper)):
            doc[j].is_sent_start = True
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
    """Character span of ``target`` in ``text``; (-1, -1) if absent.

    Tried in order: the whole target as a word-bounded phrase (case-insensitive, any whitespace), the target
    as a substring, then its longest run of words.
    """
    low, t = text.lower(), target.lower().strip()
    words = re.findall(r"\w+", t)
    if words and t[0].isalnum() and t[-1].isalnum():
        m = re.search(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in t.split()) + r"(?!\w)", low)
        if m:
            return m.start(), m.end()
    i = low.find(t)
    if t and i >= 0:
        return i, i + len(t)
    for n in range(len(words), 0, -1):
        for k in range(len(words) - n + 1):
            pat = r"\b" + r"\W+".join(re.escape(w) for w in words[k : k + n]) + r"\b"
            m = re.search(pat, low)
            if m and len(m.group(0)) >= 3:
                return m.start(), m.end()
    return -1, -1


def annotate(sentence: str, target: str, nlp=None) -> Assertion:
    """ConText attributes of ``target`` in ``sentence`` (a target not found gets all-zero attributes).

    As in NegEx (Chapman 2001), the target phrase is replaced by one placeholder token before triggers are
    matched: a trigger inside the target ("no lymphadenopathy" as the whole target) or a pseudo-trigger
    that straddles it ("no change" in "no CHANGE IN VISION") neither modifies nor blocks it.
    """
    nlp = nlp or context_pipeline()
    text, index = normalize(sentence)
    n_start, n_end = find_target(text, " ".join(target.split()))
    if n_start < 0:
        return Assertion(target, -1, -1, 0, 0, 0, 0, "patient", [])
    start, end = index[n_start], index[n_end - 1] + 1
    n_start, n_end = _word_bounds(text, n_start, n_end)
    placeholder = TARGET_TOKEN.lower() if text[n_start].islower() else TARGET_TOKEN
    masked = f"{text[:n_start]}{placeholder}{text[n_end:]}"
    doc = nlp.make_doc(masked)
    span = doc.char_span(n_start, n_start + len(placeholder), label="TARGET", alignment_mode="expand")
    for name, proc in nlp.pipeline:
        if name == "medspacy_context":
            doc.ents = [Span(doc, span.start, span.end, label="TARGET")]
        doc = proc(doc)
    ent = doc.ents[0]
    cats = set()
    for m in ent._.modifiers:
        cats.add(m.category.upper())
        cats.update(c.upper() for c in (m.rule.metadata or {}).get("also", []))
    mods = [f"{m.category}:{doc[m.modifier_span[0] : m.modifier_span[1]].text.lower()}" for m in ent._.modifiers]
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


TARGET_TOKEN = "TARGETPHRASE"


def _word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """``start``/``end`` widened to whole words, so a partial-word match masks the full word."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end
