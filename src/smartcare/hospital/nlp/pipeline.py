"""Clinical note pipeline on medspaCy: sentences, sections, target matcher, ConText.

Components (all rules are JSON under ``resources/``): spaCy ``sentencizer`` + layout breaks, medspaCy
``TargetMatcher`` (problems, medications, procedures), medspaCy ``Sectionizer`` and medspaCy ``ConText``
(Eyre H et al., "Launching into clinical space with medspaCy", AMIA Annu Symp Proc 2021:438-447).
Section-aware assertion: a mention under *past medical/surgical history* is historical, one under *family
history* has experiencer ``other`` (ConText; Harkema et al. 2009).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import spacy
from spacy.tokens import Doc

from smartcare.core.errors import SmartcareError
from smartcare.hospital.nlp import context as ctx

RESOURCES = Path(__file__).with_name("resources")
HISTORICAL_SECTIONS = {"past_medical_history", "past_surgical_history"}
FAMILY_SECTIONS = {"family_history"}


@dataclass
class Entity:
    """One problem / medication / procedure mention with character offsets and ConText attributes."""

    text: str
    label: str
    start: int
    end: int
    section: str | None
    negated: int
    historical: int
    hypothetical: int
    experiencer: str


def _rules(name: str, key: str) -> list[dict]:
    return json.loads((RESOURCES / name).read_text(encoding="utf-8"))[key]


@cache
def note_pipeline():
    """sentencizer -> layout breaks -> target matcher -> sectionizer -> ConText (cached)."""
    import medspacy  # noqa: F401  (registers the medspacy_* factories)
    from medspacy.ner import TargetRule
    from medspacy.section_detection import SectionRule

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("smartcare_layout_breaks")
    matcher = nlp.add_pipe("medspacy_target_matcher")
    matcher.add([TargetRule(r["literal"], r["category"]) for r in _rules("target_rules.json", "target_rules")])
    sectionizer = nlp.add_pipe("medspacy_sectionizer", config={"rules": None})
    sectionizer.add(
        [SectionRule(r["literal"] + ":", r["category"]) for r in _rules("section_rules.json", "section_rules")]
    )
    context = nlp.add_pipe("medspacy_context", config={"rules": None})
    context.add(ctx.load_rules())
    return nlp


def process(text: str) -> Doc:
    """The processed spaCy Doc of ``text`` (whitespace-normalised, see ``context.normalize``)."""
    norm, _ = ctx.normalize(text)
    return note_pipeline()(norm)


def extract(text: str) -> list[Entity]:
    """Entities in a note with offsets into the original ``text`` and their ConText attributes."""
    norm, index = ctx.normalize(text)
    doc = note_pipeline()(norm)
    out = []
    for ent in doc.ents:
        cats = {m.category.upper() for m in ent._.modifiers}
        cats |= {c.upper() for m in ent._.modifiers for c in (m.rule.metadata or {}).get("also", [])}
        section = ent._.section_category
        out.append(
            Entity(
                text=text[index[ent.start_char] : index[ent.end_char - 1] + 1],
                label=ent.label_,
                start=index[ent.start_char],
                end=index[ent.end_char - 1] + 1,
                section=section,
                negated=int("NEGATED_EXISTENCE" in cats),
                historical=int("HISTORICAL" in cats or section in HISTORICAL_SECTIONS),
                hypothetical=int("HYPOTHETICAL" in cats),
                experiencer="other" if ("FAMILY" in cats or section in FAMILY_SECTIONS) else "patient",
            )
        )
    return out


def annotate_csv(src: Path, out: Path, text_column: str = "sentence", target_column: str | None = "condition") -> int:
    """Write, per row, negated / historical / hypothetical / experiencer of the target and the entities found.

    Returns the number of rows written. Raises SmartcareError if the file or a column is missing; the
    output is written to a temporary file and moved into place only when complete.
    """
    if not src.is_file():
        raise SmartcareError(f"input CSV not found: {src}")
    try:  # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        with src.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = list(reader.fieldnames or [])
            if not fields:
                raise SmartcareError(f"{src} is empty: expected a header row with a {text_column!r} column")
            for col in [text_column] + ([target_column] if target_column else []):
                if col not in fields:
                    raise SmartcareError(f"column {col!r} not in {src} (columns: {', '.join(fields)})")
            rows = list(reader)
    except UnicodeDecodeError as err:
        raise SmartcareError(f"{src} is not UTF-8 text (byte {err.start}): save it as CSV UTF-8") from None
    except csv.Error as err:
        raise SmartcareError(f"{src} is not a readable CSV: {err}") from None
    extra = ["negated", "historical", "hypothetical", "experiencer", "target_start", "target_end", "entities"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        _write_annotations(tmp, rows, fields, extra, text_column, target_column)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return len(rows)


def _write_annotations(tmp: Path, rows: list[dict[str, str]], fields: list[str], extra: list[str],
                       text_column: str, target_column: str | None) -> None:
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + [c for c in extra if c not in fields])
        writer.writeheader()
        for row in rows:
            text = row[text_column] or ""
            ents = [asdict(e) for e in extract(text)]
            if target_column:
                a = ctx.annotate(text, row[target_column] or "")
                vals = {
                    "negated": a.negated,
                    "historical": a.historical,
                    "hypothetical": a.hypothetical,
                    "experiencer": a.experiencer,
                    "target_start": a.start,
                    "target_end": a.end,
                }
            else:
                first = ents[0] if ents else {}
                vals = {k: first.get(k, 0) for k in ("negated", "historical", "hypothetical")}
                vals.update(experiencer=first.get("experiencer", "patient"), target_start=-1, target_end=-1)
            writer.writerow({**row, **vals, "entities": json.dumps(ents)})
