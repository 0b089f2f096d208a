"""MolecularSequence coordinate search on the official R4 examples (FHIR R4 molecularsequence.html#search)."""

from __future__ import annotations

import json

import pytest

FDA = {"fda-example", "fda-vcf-comparison", "fda-vcfeval-comparison"}
CHR7 = "http://terminology.hl7.org/CodeSystem/chromosome-human|7"
# Our own sequence with two variants, to show that composite components come from one variant.
TWO_VARIANTS = {
    "resourceType": "MolecularSequence",
    "id": "two-variants",
    "type": "dna",
    "coordinateSystem": 1,
    "referenceSeq": {
        "chromosome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": "7"}]},
        "genomeBuild": "GRCh38",
        "windowStart": 90,
        "windowEnd": 300,
    },
    "variant": [{"start": 100, "end": 110}, {"start": 200, "end": 210}],
}


@pytest.fixture(scope="module", autouse=True)
def data(client, examples_dir):
    files = sorted(examples_dir.glob("MolecularSequence-*.json"))
    assert len(files) == 14
    for path in files:
        res = json.loads(path.read_text())
        r = client.put(f"/fhir/MolecularSequence/{res['id']}", json=res)
        assert r.status_code == 201, r.text
    assert client.put("/fhir/MolecularSequence/two-variants", json=TWO_VARIANTS).status_code == 201


def ids(client, query: str) -> set[str]:
    r = client.get(f"/fhir/MolecularSequence?{query}")
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


CASES = [
    # the single coordinate parameters
    ("referenceseqid=NC_000001.11", FDA),
    ("referenceseqid=http://www.ncbi.nlm.nih.gov/nuccore|NC_000009.11", {"example"}),
    ("chromosome=2", {"graphic-example-4"}),
    ("chromosome=" + CHR7, {"two-variants"}),
    ("window-start=lt20000", FDA | {"graphic-example-2", "two-variants"}),
    ("window-end=8", {"graphic-example-2"}),
    ("variant-start=13116", FDA),
    ("variant-end=gt128273735", {"graphic-example-3", "sequence-complex-variant"}),
    ("variant-start=ge18131012&variant-start=le18139214", {"example-TPMT-one", "example-TPMT-two"}),
    # window composites: id or chromosome $ window-start $ window-end, with prefixes
    ("referenceseqid-window-coordinate=NC_000001.11$lt20000$gt100000000", FDA),
    (
        "referenceseqid-window-coordinate=http://www.ncbi.nlm.nih.gov/nuccore|NC_000002.12$le128273732$ge128273736",
        {"graphic-example-5", "sequence-complex-variant"},
    ),
    ("chromosome-window-coordinate=2$lt128273737$gt128273739", {"graphic-example-4"}),
    ("chromosome-window-coordinate=1$lt345$gt123", set()),
    # variant composites: the start and end must come from the same variant
    ("referenceseqid-variant-coordinate=NC_000009.11$22125503$22125504", {"example"}),
    (
        "referenceseqid-variant-coordinate=NC_000009.11$22125503$22125504,NC_000001.11$13116$13117",
        FDA | {"example"},
    ),
    ("chromosome-variant-coordinate=7$100$110", {"two-variants"}),
    ("chromosome-variant-coordinate=7$ge150$le215", {"two-variants"}),
    ("chromosome-variant-coordinate=7$100$210", set()),
    ("chromosome=7&variant-start=100&variant-end=210", {"two-variants"}),  # separate params do not pair
    ("chromosome-variant-coordinate=2$100$110", set()),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_molecular_sequence_coordinates(client, query, expected):
    assert ids(client, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "chromosome-window-coordinate=1$lt345",
        "chromosome-window-coordinate:missing=true",
        "variant-start=abc",
        "start=100",  # R4 defines no 'start'/'end' on MolecularSequence (STU3 Sequence did)
    ],
)
def test_bad_coordinate_search_is_400(client, query):
    r = client.get(f"/fhir/MolecularSequence?{query}")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
