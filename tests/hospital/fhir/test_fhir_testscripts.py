"""The HL7 and Crucible TestScripts, run by the project's runner; every failing assert is explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcare.hospital.fhir.testscript import TestScriptRunner, xpath_to_fhirpath

# (script id, assert label) -> why the assert fails against a correct R4 server. The scripts' XML
# operations and asserts (accept/contentType xml) run in XML and pass.
EXPLAINED = {
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
    assert (passed, len(results)) == (97, 103)  # 90/103 before XML support; the 7 XML asserts now pass


XML_FIXTURE = """<Patient xmlns="http://hl7.org/fhir"><id value="xml-fixture"/>
  <name><family value="Xmlson"/><given value="Tess"/></name><gender value="female"/></Patient>"""


def test_xml_fixture_and_content_types(client):
    script = {
        "resourceType": "TestScript",
        "id": "xml-fixture-script",
        "fixture": [{"id": "p", "resource": {"reference": "fixtures/p.xml"}}],
        "test": [
            {
                "name": "xml",
                "action": [
                    {
                        "operation": {
                            "type": {"code": "update"},
                            "resource": "Patient",
                            "params": "/xml-fixture",
                            "sourceId": "p",
                            "accept": "xml",
                            "contentType": "application/fhir+xml",
                        }
                    },
                    {"assert": {"label": "created", "responseCode": "200,201", "operator": "in"}},
                    {"assert": {"label": "sent xml", "direction": "request", "contentType": "xml"}},
                    {"assert": {"label": "got xml", "contentType": "xml"}},
                    {"assert": {"label": "not json", "contentType": "json"}},
                    {"assert": {"label": "family", "expression": "Patient.name.family", "value": "Xmlson"}},
                    {"assert": {"label": "xpath", "path": "fhir:Patient/fhir:gender/@value", "value": "female"}},
                    {"assert": {"label": "minimum", "minimumId": "p"}},
                    {"operation": {"type": {"code": "read"}, "resource": "Patient", "params": "/xml-fixture"}},
                    {"assert": {"label": "json by default", "contentType": "json"}},
                ],
            }
        ],
    }
    runner = TestScriptRunner(client, "/fhir", lambda ref: XML_FIXTURE.encode())
    results = {r.label: r.passed for r in runner.run(script)}
    assert results == {
        "created": True,
        "sent xml": True,
        "got xml": True,
        "not json": False,
        "family": True,
        "xpath": True,
        "minimum": True,
        "json by default": True,
    }
