"""Contextual potential drug-drug interaction (PDDI) rules of the HL7 PDDI-CDS IG, as CDS Hooks cards.

Implements, from the narrative logic of the IG use cases (HL7 FHIR IG "Potential Drug-Drug Interaction
(PDDI) CDS", use-cases page; rules originally from AHRQ R21-HS023826, Malone, Horn, Hansten):

- Warfarin + NSAIDs: topical/ophthalmic NSAID -> no special precautions (info); systemic NSAID with a
  proton pump inhibitor or misoprostol -> assess risk (warning); otherwise history of upper GI bleeding or
  peptic ulcer, age > 65, systemic corticosteroid, aldosterone antagonist or several NSAIDs -> use only if
  benefit outweighs risk (critical); none of these -> assess risk (warning).
- Digoxin + cyclosporine: a card on the digoxin level (in 0.8-2.0 ng/mL -> assess risk; none recent ->
  use only if benefits outweigh risks; above range -> critical) and a card on renal function, electrolytes
  and loop / potassium-sparing diuretics.

Indicator mapping of the IG legend: no special precautions = info, assess risk = warning, use only if
benefit outweighs risk = critical (warning for a missing level, as in the IG's example response).
Each card carries a ``key`` (drug pair + recommendation) used for order-select / order-sign coordination.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from smartcare.hospital.cds import rxnorm
from smartcare.hospital.cds.fhir_inputs import age_at, codes, extract_inputs, parse_date, ref, when
from smartcare.hospital.cds.interactions import Interaction, detected_issue

SOURCE = {"label": "smartcare PDDI CDS (HL7 PDDI-CDS IG logic)", "url": "http://hl7.org/fhir/uv/pddi/"}
ACETAMINOPHEN = {"system": rxnorm.RXNORM, "code": "313782", "display": "Acetaminophen 325 MG Oral Tablet"}
DIGOXIN_RANGE = (0.8, 2.0)  # ng/mL, IG use case footnote
LEVEL_LOOKBACK_DAYS = 30


@dataclass
class OrderData:
    """What a rule sees: the drafts being evaluated, all other medications, conditions, observations."""

    evaluated: list[dict]
    other_meds: list[dict]
    conditions: list[dict] = field(default_factory=list)
    observations: list[dict] = field(default_factory=list)
    patient: dict | None = None
    reference_date: date | None = None  # from the draft orders' authoredOn; None = unknown

    @property
    def all_meds(self) -> list[dict]:
        return self.evaluated + self.other_meds


def _with(meds: list[dict], cls: str, systemic_only: bool = True) -> list[tuple[dict, rxnorm.Ingredient]]:
    out = []
    for m in meds:
        for ing in rxnorm.resolve_resource(m):
            if cls in ing.classes and (ing.systemic or not systemic_only):
                out.append((m, ing))
    return out


def display(res: Mapping) -> str:
    concept = res.get("medicationCodeableConcept") or {}
    codings = concept.get("coding") or [{}]
    return concept.get("text") or codings[0].get("display") or "medication"


def cancel_action(draft: Mapping) -> dict:
    if draft.get("id"):
        return {
            "type": "delete",
            "description": f"Remove the draft order for {display(draft)}",
            "resourceId": f"{draft.get('resourceType', 'MedicationRequest')}/{draft['id']}",
        }
    cancelled = dict(draft, status="cancelled")
    return {"type": "update", "description": f"Cancel the draft order for {display(draft)}", "resource": cancelled}


def make_card(summary: str, indicator: str, detail: str, key: str, suggestions: list[dict], links: list[dict]) -> dict:
    for s in suggestions:
        s.setdefault("uuid", str(uuid.uuid4()))
    card = {
        "uuid": str(uuid.uuid4()),
        "summary": summary[:140],
        "indicator": indicator,
        "detail": detail,
        "source": dict(SOURCE),
        "suggestions": suggestions,
        "links": links,
        "key": key,
    }
    if suggestions:
        card["selectionBehavior"] = "at-most-one"
    return card


def issue_suggestion(interaction: Interaction, patient: str | None) -> dict:
    return {
        "label": "Record this interaction (DetectedIssue)",
        "actions": [
            {
                "type": "create",
                "description": "Create a DetectedIssue documenting the PDDI",
                "resource": detected_issue(interaction, patient),
            }
        ],
    }


def patient_ref(data: OrderData) -> str | None:
    if data.patient and data.patient.get("id"):
        return f"Patient/{data.patient['id']}"
    for m in data.evaluated:
        subj = (m.get("subject") or m.get("patient") or {}).get("reference")
        if subj:
            return subj
    return None


def _ugib_history(data: OrderData) -> list[dict]:
    ugib_codes = set(rxnorm.valueset("Valueset_Hx_UGIB_snomed"))
    hits = []
    for c in data.conditions:
        if ugib_codes & set(codes(c.get("code"), "http://snomed.info/sct")):
            hits.append(c)
    inputs = extract_inputs(data.conditions)
    for name in ("bleeding_history", "peptic_ulcer"):
        if name in inputs:
            hits.extend(c for c in data.conditions if ref(c) in inputs[name].references and c not in hits)
    return hits


def warfarin_nsaids(data: OrderData) -> list[dict]:
    """Cards for warfarin + NSAID where one of the pair is among the evaluated draft orders."""
    warf_new = _with(data.evaluated, "vitamin_k_antagonist")
    nsaid_new = _with(data.evaluated, "nsaid", systemic_only=False)
    warf_all = _with(data.all_meds, "vitamin_k_antagonist")
    nsaid_all = _with(data.all_meds, "nsaid", systemic_only=False)
    if not ((warf_new and nsaid_all) or (nsaid_new and warf_all)):
        return []
    pid = patient_ref(data)
    warf_res, nsaid_res = warf_all[0][0], nsaid_all[0][0]
    systemic_nsaids = [(m, i) for m, i in nsaid_all if i.systemic]
    factors: list[str] = []
    if not systemic_nsaids:
        action, indicator, why = (
            "No special precautions",
            "info",
            (f"The NSAID ({display(nsaid_res)}) is {nsaid_all[0][1].route}: relatively low systemic absorption."),
        )
    elif _with(data.all_meds, "ppi") or _with(data.all_meds, "misoprostol"):
        gastro = (_with(data.all_meds, "ppi") + _with(data.all_meds, "misoprostol"))[0][0]
        action, indicator, why = (
            "Assess risk and take action if necessary",
            "warning",
            (
                f"The patient is taking {display(gastro)}; proton pump inhibitors and misoprostol may reduce the risk "
                "of upper GI bleeding in patients receiving NSAIDs and warfarin."
            ),
        )
    else:
        for c in _ugib_history(data):
            factors.append(f"history of upper GI bleeding / peptic ulcer ({ref(c)})")
        if data.patient and data.patient.get("birthDate"):
            age = age_at(data.patient["birthDate"], data.reference_date or date.today())
            if age > 65:
                factors.append(f"age {age} > 65")
        for m, _ in _with(data.all_meds, "systemic_corticosteroid"):
            factors.append(f"systemic corticosteroid ({display(m)})")
        for m, _ in _with(data.all_meds, "aldosterone_antagonist"):
            factors.append(f"aldosterone antagonist ({display(m)})")
        if len(systemic_nsaids) > 1:
            factors.append(f"multiple NSAID orders ({len(systemic_nsaids)})")
        if factors:
            action, indicator = "Use only if benefit outweighs risk", "critical"
            why = "Risk factors for upper GI bleeding: " + "; ".join(factors) + "."
        else:
            action, indicator = "Assess risk and take action if necessary", "warning"
            why = "No PPI/misoprostol co-medication and no additional bleeding risk factor found."
    interaction = Interaction(
        "warfarin",
        nsaid_all[0][1].name,
        {"info": "low", "warning": "moderate", "critical": "high"}[indicator],
        "pddi-cds:warfarin-nsaids",
        ["HL7 PDDI-CDS IG, Warfarin + NSAIDs use case", "Masclee GMC et al. Gastroenterology 2014;147(4):784-792"],
        references=[ref(warf_res), ref(nsaid_res)],
        detail=f"Warfarin + NSAID: increased risk of bleeding. {action}. {why}",
    )
    detail = (
        f"**{action}.** {why}\n\nNSAIDs have antiplatelet effects that increase bleeding risk with warfarin, "
        "mostly upper GI bleeding. If the NSAID is used as an analgesic or antipyretic, prefer acetaminophen "
        "(monitor the INR above 2 g/day for several days); for more severe pain consider short-term opioids."
    )
    suggestions = []
    draft_nsaids = [m for m, _ in nsaid_new]
    if indicator != "info":
        target = draft_nsaids[0] if draft_nsaids else warf_new[0][0]
        suggestions.append(
            {
                "label": f"Cancel {display(target)}",
                "isRecommended": indicator == "critical",
                "actions": [cancel_action(target)],
            }
        )
        if draft_nsaids:
            new = {
                "resourceType": "MedicationRequest",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {"coding": [dict(ACETAMINOPHEN)], "text": ACETAMINOPHEN["display"]},
            }
            if pid:
                new["subject"] = {"reference": pid}
            suggestions.append(
                {
                    "label": "Replace the NSAID with acetaminophen",
                    "actions": [
                        cancel_action(draft_nsaids[0]),
                        {"type": "create", "description": "Order acetaminophen instead", "resource": new},
                    ],
                }
            )
    suggestions.append(issue_suggestion(interaction, pid))
    summary = f"Warfarin + {nsaid_all[0][1].name}: {action.lower()} (bleeding risk)"
    links = [
        {
            "label": "PDDI-CDS IG: Warfarin + NSAIDs",
            "url": "http://hl7.org/fhir/uv/pddi/use-cases.html",
            "type": "absolute",
        }
    ]
    return [make_card(summary, indicator, detail, f"warfarin-nsaids|{action}", suggestions, links)]


def _latest(data: OrderData, loinc: set[str]) -> dict | None:
    obs = [o for o in data.observations if loinc & set(codes(o.get("code"), "http://loinc.org"))]
    return max(obs, key=when) if obs else None


def _value(o: Mapping | None) -> float | None:
    q = (o or {}).get("valueQuantity") or {}
    return float(q["value"]) if q.get("value") is not None else None


def digoxin_cyclosporine(data: OrderData) -> list[dict]:
    """Cards for digoxin + (systemic) cyclosporine where one of the pair is being ordered."""
    dig_new, cyc_new = _with(data.evaluated, "cardiac_glycoside"), _with(data.evaluated, "calcineurin_inhibitor")
    dig_all, cyc_all = _with(data.all_meds, "cardiac_glycoside"), _with(data.all_meds, "calcineurin_inhibitor")
    cyc_new = [(m, i) for m, i in cyc_new if i.name == "cyclosporine"]
    cyc_all = [(m, i) for m, i in cyc_all if i.name == "cyclosporine"]
    if not ((dig_new and cyc_all) or (cyc_new and dig_all)):
        return []
    pid = patient_ref(data)
    draft = (dig_new or cyc_new)[0][0]
    links = [
        {
            "label": "PDDI-CDS IG: Digoxin + Cyclosporine",
            "url": "http://hl7.org/fhir/uv/pddi/use-cases.html",
            "type": "absolute",
        }
    ]
    interaction = Interaction(
        "digoxin",
        "cyclosporine",
        "high",
        "pddi-cds:digoxin-cyclosporine",
        ["HL7 PDDI-CDS IG, Digoxin + Cyclosporine use case", "Dorian P et al. Clin Invest Med 1988;11(2):108-112"],
        references=[ref(dig_all[0][0]), ref(cyc_all[0][0])],
        detail="Digoxin + cyclosporine: P-glycoprotein inhibition raises digoxin levels (risk of digitalis toxicity).",
    )
    level_obs = _latest(data, {"10535-3"})
    level = _value(level_obs)
    recent = level_obs is not None
    if recent and data.reference_date is not None:
        taken = parse_date(when(level_obs))
        recent = taken is None or (data.reference_date - taken).days <= LEVEL_LOOKBACK_DAYS  # newer: recent
    lo, hi = DIGOXIN_RANGE
    if not recent or level is None:
        summary, indicator, action = (
            (f"No digoxin level on record within {LEVEL_LOOKBACK_DAYS} days (digoxin + cyclosporine)"),
            "warning",
            "Use only if benefits outweigh risks",
        )
        why = "Initiating cyclosporine is expected to increase digoxin levels; no reliable recent level is available."
    elif level > hi:
        summary, indicator, action = (
            f"Digoxin level {level} ng/mL above range (digoxin + cyclosporine)",
            "critical",
            "Use only if benefit outweighs risk",
        )
        why = f"Digoxin {level} ng/mL ({ref(level_obs)}) exceeds {hi} ng/mL before adding the interacting drug."
    else:
        summary, indicator, action = (
            f"Digoxin level {level} ng/mL (digoxin + cyclosporine): assess risk",
            "warning",
            "Assess risk and take action if necessary",
        )
        why = (
            f"Digoxin {level} ng/mL ({ref(level_obs)}) is {'within' if level >= lo else 'below'} the "
            f"{lo}-{hi} ng/mL range; anticipate an increase after cyclosporine, monitor and adjust the dose."
        )
    level_order = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "10535-3", "display": "Digoxin [Mass/volume] in Serum or Plasma"}
            ]
        },
    }
    if pid:
        level_order["subject"] = {"reference": pid}
    suggestions = [
        {
            "label": "Order a digoxin level",
            "actions": [
                {
                    "type": "create",
                    "description": "Digoxin trough within 24 h of starting cyclosporine",
                    "resource": level_order,
                }
            ],
        },
        {"label": f"Cancel {display(draft)}", "actions": [cancel_action(draft)]},
        issue_suggestion(interaction, pid),
    ]
    cards = [
        make_card(
            summary, indicator, f"**{action}.** {why}", f"digoxin-cyclosporine|level|{action}", suggestions, links
        )
    ]
    cards.append(_digoxin_risk_card(data, links))
    return cards


def _digoxin_risk_card(data: OrderData, links: list[dict]) -> dict:
    problems, seen = [], []
    cr = _latest(data, {"2160-0", "38483-4"})
    egfr = _latest(data, {"33914-3", "62238-1", "98979-8", "48642-3", "48643-1"})
    if egfr is not None:
        comp = (egfr.get("valueQuantity") or {}).get("comparator")
        v = _value(egfr)
        seen.append(f"eGFR {comp or ''}{v}")
        if v is not None and v < 60 and comp not in (">", ">="):
            problems.append(f"reduced renal function (eGFR {v})")
    if cr is not None:
        v = _value(cr)
        seen.append(f"creatinine {v} mg/dL")
        if v is not None and v > 1.5:
            problems.append(f"raised creatinine ({v} mg/dL)")
    if cr is None and egfr is None:
        problems.append("no renal function result")
    checks = [
        ("potassium", {"2823-3", "6298-4", "75940-7", "22760-3"}, lambda v: v < 3.5, "hypokalaemia"),
        ("magnesium", {"19123-9", "2601-3"}, lambda v: (v / 2.43 if v > 1.2 else v) < 0.7, "hypomagnesaemia"),
        ("calcium", {"17861-6"}, lambda v: (v * 4.008 if v < 4 else v) > 10.5, "hypercalcaemia"),
    ]
    for name, loinc, bad, label in checks:
        o = _latest(data, loinc)
        if o is None:
            problems.append(f"no {name} result")
            continue
        v = _value(o)
        seen.append(f"{name} {v}")
        if v is not None and bad(v):
            problems.append(f"{label} ({name} {v})")
    for cls in ("loop_diuretic", "potassium_sparing_diuretic"):
        for m, _ in _with(data.all_meds, cls):
            problems.append(f"{cls.replace('_', ' ')}: {display(m)}")
    if problems:
        return make_card(
            "Digoxin toxicity risk factors: " + "; ".join(problems)[:100],
            "warning",
            "**Assess risk and take action if necessary.** Reduced renal function and electrolyte "
            "abnormalities (low K or Mg, high Ca) raise digoxin levels or toxicity: " + "; ".join(problems) + ".",
            "digoxin-cyclosporine|risk|" + "|".join(sorted(problems)),
            [],
            links,
        )
    return make_card(
        "Renal function and electrolytes checked and normal; no loop or potassium-sparing diuretic",
        "info",
        "Results: " + ", ".join(seen) + ".",
        "digoxin-cyclosporine|risk|normal",
        [],
        links,
    )


RULES = {"warfarin-nsaids": warfarin_nsaids, "digoxin-cyclosporine": digoxin_cyclosporine}
