"""The HL7 and Crucible TestScripts, run by the project's runner; every failing assert is explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcare.hospital.fhir.testscript import TestScriptRunner, xpath_to_fhirpath

XML = "the script asks for XML; this server speaks application/fhir+json only"
# (script id, assert label) -> why the assert fails against a correct R4 JSON server.
EXPLAINED = {
    ("TestScript-testscript-example-multisystem", "Confirm that the client requested an Accept of xml."): XML,
    ("TestScript-testscript-example-multisystem", "Confirm that the returned format is XML."): XML,
    ("TestScript-testscript-example-readtest", "Confirm that the returned format is XML."): XML,
    ("TestScript-testscript-example-search", "Confirm that the returned format is XML."): XML,
    ("TestScript-testscript-example-update", "Confirm that the returned format is XML."): XML,
    (
        "TestScript-testscript-example-readtest",
        "Confirm that the returned HTTP status is 400(Bad Request).",
    ): "R4 ids may contain capitals ([A-Za-z0-9-.]{1,64}); the unknown id correctly gives 404",
    (
        "read_testscript",
        "01-Response400",
    ): "R4 ids may contain capitals ([A-Za-z0-9-.]{1,64}); the unknown id correctly gives 404",
    (
        "general_testscript",
        "01-ConfirmResponse201",
    ): "script expects 200 for create-on-update although its description says 201; R4 http.html#update says 201",
    (
        "history_testscript",
        "01-Response200",
    ): "fixture example2.json has birthDate '1978-3-1', invalid R4 date; the server correctly answers 400",
    (
        "update_testscript",
        "01-Response200",
    ): "fixture example2.json has birthDate '1978-3-1', invalid R4 date; the server correctly answers 400",
    ("update_testscript", "03-ResponseHTTPheader"): "follows from the rejected invalid update above (warning only)",
}


@pytest.fixture(scope="module")
def scripts(shared_data) -> list[tuple[Path, dict]]:
    root = shared_data / "hospital" / "fhir-testscripts"
    out = []
    for f in sorted(root.glob("*/*.json")):
        data = json.loads(f.read_text())
        if data["resourceType"] == "TestScript":
            out.append((f, data))
    assert len(out) == 11
    return out


def _loader(folder: Path, examples: Path):
    def load(ref: str) -> dict:
        if ref.startswith("fixtures/"):
            return json.loads((folder / ref).read_text())
        rtype, rid = ref.split("/")
        return json.loads((examples / f"{rtype}-{rid}.json").read_text())

    return load


def test_xpath_translation():
    assert xpath_to_fhirpath("fhir:Patient/fhir:name/fhir:family/@value") == "Patient.name.family"


def test_testscripts_pass_or_are_explained(client, scripts, examples_dir):
    results = []
    for path, script in scripts:
        runner = TestScriptRunner(
            client,
            "/fhir",
            _loader(path.parent, examples_dir),
            {"PatientSearchFamilyName": "Chalmers", "PatientSearchGivenName": "Peter"},
        )
        results += [(path.stem, r) for r in runner.run(script)]
    failed = [(stem, r.label) for stem, r in results if not r.passed]
    unexplained = [f for f in failed if f not in EXPLAINED]
    passed = sum(r.passed for _, r in results)
    print(f"TestScripts: {passed}/{len(results)} asserts pass, {len(failed)} fail (all explained)")
    assert unexplained == []
    assert set(failed) == set(EXPLAINED)  # an explained failure that now passes must be removed
    assert passed == len(results) - len(failed) and passed >= 90
