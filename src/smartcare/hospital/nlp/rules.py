"""Build medspaCy ConText rules (``resources/context_rules.json``) from NegEx / genConText trigger lists.

Trigger lists: Chapman WW et al., "A simple algorithm for identifying negated findings and diseases in
discharge summaries", J Biomed Inform 2001;34:301-310 (NegEx, GeneralNegEx 1.2 triggers) and Harkema H et
al., "ConText: an algorithm for determining negation, experiencer, and temporal status from clinical
reports", J Biomed Inform 2009;42:839-851 (genConText history / hypothetical / experiencer triggers);
chapmanbe/negex, Apache-2.0. Tag mapping:

- ``[PREN]`` / ``[ONEW]`` -> FORWARD, ``[POST]`` -> BACKWARD (``[PREP]``/``[POSP]``: possible existence);
- ``[PSEU]`` -> PSEUDO (blocks a shorter trigger inside it);
- ``[CONJ]`` -> a terminator: NegEx conjunctions end every scope (TERMINATE); the genConText ones end only
  their own category (category ``<CAT>_TERM`` listed in that category's ``terminated_by``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

RESOURCES = Path(__file__).with_name("resources")
FILES = {
    "NEGATED_EXISTENCE": "negex_triggers.csv",
    "HISTORICAL": "context_history_triggers.csv",
    "HYPOTHETICAL": "context_hypothetical_triggers.csv",
    "FAMILY": "context_experiencer_triggers.csv",
}
DIRECTION = {
    "[PREN]": "FORWARD",
    "[ONEW]": "FORWARD",
    "[PREP]": "FORWARD",
    "[POST]": "BACKWARD",
    "[POSP]": "BACKWARD",
    "[PSEU]": "PSEUDO",
}


def build_context_rules(trigger_dir: Path | str) -> list[dict]:
    """medspaCy ConTextRule dicts (literal, category, direction, terminated_by) from the trigger CSVs."""
    rules: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    for category, fname in FILES.items():
        with (Path(trigger_dir) / fname).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                phrase, tag = row["phrase"].strip().lower(), row["tag"].strip()
                cat = category
                if category == "NEGATED_EXISTENCE" and tag in ("[PREP]", "[POSP]"):
                    cat = "POSSIBLE_EXISTENCE"
                if tag == "[CONJ]":
                    if category == "NEGATED_EXISTENCE":
                        cat, direction = "TERMINATE", "TERMINATE"
                    else:
                        cat, direction = f"{category}_TERM", "PSEUDO"
                elif tag in DIRECTION:
                    direction = DIRECTION[tag]
                else:
                    continue
                key = (phrase, cat, direction)
                if not phrase or key in seen:
                    continue
                seen.add(key)
                rule = {"literal": phrase, "category": cat, "direction": direction}
                if cat in ("HISTORICAL", "HYPOTHETICAL", "FAMILY"):
                    rule["terminated_by"] = [f"{cat}_TERM"]
                rules.append(rule)
    return rules


def write_context_rules(trigger_dir: Path | str, out: Path | str = RESOURCES / "context_rules.json") -> Path:
    rules = build_context_rules(trigger_dir)
    doc = {
        "_source": "chapmanbe/negex (Apache-2.0): GeneralNegEx 1.2 and genConText trigger lists, converted by "
        "smartcare.hospital.nlp.rules",
        "context_rules": rules,
    }
    Path(out).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return Path(out)
