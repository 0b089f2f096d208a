"""ConText rule categories on made-up sentences (none is a row of the NegEx reference standard)."""

from __future__ import annotations

import pytest

from smartcare.hospital.nlp.context import annotate, context_pipeline, find_target, load_rules, normalize


@pytest.mark.parametrize(
    "sentence,target,expect",
    [
        # trigger / target overlap: a pseudo-trigger straddling the target does not block the negation ...
        ("No change in appetite or weight.", "change in appetite", {"negated": 1}),
        # ... but still blocks it when it lies wholly outside the target
        ("No change in the size of the nodule.", "nodule", {"negated": 0}),
        # a trigger inside the target phrase does not modify it
        ("Abdomen soft, no tenderness", "Abdomen soft, no tenderness", {"negated": 0}),
        # post-negation triggers
        ("The rash has resolved.", "rash", {"negated": 1}),
        ("Pulmonary embolism was ruled out.", "pulmonary embolism", {"negated": 1}),
        ("Her D-dimer is negative.", "D-dimer", {"negated": 1}),
        ("Clubbing is not present.", "clubbing", {"negated": 1}),
        ("Calf pain free since Monday.", "calf pain", {"negated": 1}),
        # pseudo-triggers
        ("Gram negative rods in the sputum.", "rods", {"negated": 0}),
        ("Not only cough but also fever.", "cough", {"negated": 0}),
        # scope termination: conjunctions, "positive for", a new clause, relational nouns
        ("No fever but complains of cough.", "cough", {"negated": 0}),
        ("No chills, positive for night sweats.", "night sweats", {"negated": 0}),
        ("Denies headache, presents with nausea.", "nausea", {"negated": 0}),
        ("Without any bleeding, the patient remained tachycardic.", "tachycardic", {"negated": 0}),
        ("No clear explanation for her dizziness.", "dizziness", {"negated": 0}),
        ("She has not sought treatment for the back pain.", "back pain", {"negated": 0}),
        ("No cause for the anemia was found.", "anemia", {"negated": 0}),
        # list scope: a negation runs over a coordinated list
        ("He denies nausea, vomiting, diarrhea or constipation.", "constipation", {"negated": 1}),
        ("Negative for rash, pruritus and jaundice.", "jaundice", {"negated": 1}),
        # "no evidence of", "free of", "absence of"
        ("No evidence of acute intracranial hemorrhage.", "intracranial hemorrhage", {"negated": 1}),
        ("Margins are free of carcinoma.", "carcinoma", {"negated": 1}),
        # sentence / heading boundaries end the scope
        ("Denies chest pain. Reports palpitations.", "palpitations", {"negated": 0}),
        ("Comments: not reviewed  Past History: asthma.", "asthma", {"negated": 0, "historical": 1}),
        ("NEGATIVE FOR INTRAEPITHELIAL LESION OR MALIGNANCY: SEE NOTE", "malignancy", {"negated": 1}),
        # former / quit: not current, historical
        ("Former smoker.", "smoker", {"negated": 1, "historical": 1}),
        ("Alcohol: quit in 2001.", "alcohol", {"negated": 1, "historical": 1}),
        # an order to look for a condition does not negate it
        ("Evaluate for pneumothorax.", "pneumothorax", {"negated": 0, "hypothetical": 1}),
        ("Rule out appendicitis.", "appendicitis", {"negated": 0, "possible": 1}),
        # temporality
        ("Past medical history is positive for asthma and gout.", "gout", {"historical": 1, "negated": 0}),
        ("History of asthma, presents with wheezing.", "wheezing", {"historical": 0}),
        ("She had chickenpox as a child.", "chickenpox", {"historical": 1}),
        ("Status post appendectomy.", "appendectomy", {"historical": 1}),
        ("Call if you develop chest pain.", "chest pain", {"hypothetical": 1}),
        ("Monitor for signs of bleeding.", "bleeding", {"hypothetical": 1}),
        # experiencer
        ("Family history of colon cancer.", "colon cancer", {"experiencer": "other", "historical": 1}),
        ("His father had a stroke at 60.", "stroke", {"experiencer": "other"}),
        ("The patient had a stroke at 60.", "stroke", {"experiencer": "patient"}),
    ],
)
def test_rule_categories(sentence, target, expect):
    a = annotate(sentence, target).to_dict()
    for key, value in expect.items():
        assert a[key] == value, (sentence, key, a)


def test_find_target_prefers_whole_words():
    text = "Complete study; PE is seen."
    start, end = find_target(text, "PE")
    assert text[start:end] == "PE" and start == text.index("PE ")
    assert find_target("bowel   distention", "bowel distention") == (0, 18)


def test_same_literal_terminators_are_merged():
    rules = {r.literal.lower(): r for r in load_rules()}
    presents = rules["presents"].category.split("|")
    assert {"HISTORICAL_TERM", "FAMILY_TERM", "NEGATED_EXISTENCE_TERM"} <= set(presents)
    assert rules["history"].category == "HISTORICAL" and rules["presents"].category in rules["history"].terminated_by
    assert rules["evaluate for"].category == "HYPOTHETICAL"  # the override replaced the NegEx [PREN] rule


def test_heading_starts_a_sentence():
    doc = context_pipeline()(normalize("{Not Entered}  Menstrual History: regular.  ADEQUACY: fine")[0])
    starts = [s[0].text for s in doc.sents]
    assert "Menstrual" in starts and "ADEQUACY" in starts
    caps = context_pipeline()("NO ACUTE FRACTURE OR DISLOCATION OF THE SPINE: SEE ABOVE")
    assert len(list(caps.sents)) == 1  # an all-capitals sentence is not cut at its colon
