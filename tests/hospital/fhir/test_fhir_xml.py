"""FHIR XML: the JSON <-> XML mapping (FHIR R4 xml.html / json.html) and XML over the REST API."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from smartcare.hospital.fhir.validation import R4_ONLY_TYPES, known_types
from smartcare.hospital.fhir.xml import FHIR_NS, FhirXmlError, from_xml, to_xml
from smartcare.hospital.fhir.xmldefs import PRIMITIVES, element_table

XML = "application/fhir+xml"
F = f"{{{FHIR_NS}}}"

# Written by hand from the rules and examples of FHIR R4 xml.html and json.html ("Primitive Types",
# "Representing primitive elements" with id and extensions, repeating primitives, contained resources).
SPEC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment is ignored -->
<Patient xmlns="http://hl7.org/fhir">
  <id value="spec"/>
  <contained>
    <Organization>
      <id value="org1"/>
      <name value="Acme &amp; Sons"/>
    </Organization>
  </contained>
  <extension url="http://example.org/fhir/StructureDefinition/rank">
    <valueDecimal value="1.50"/>
  </extension>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Peter <b>Chalmers</b> &amp; co</p><br/></div>
  </text>
  <active value="true"/>
  <name id="n1">
    <family value="Chalmers"/>
    <given value="Peter"/>
    <given>
      <extension url="http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier">
        <valueCode value="MID"/>
      </extension>
    </given>
  </name>
  <birthDate id="314159" value="1970-03-30">
    <extension url="http://example.org/fhir/StructureDefinition/text">
      <valueString value="Easter&#10;1970"/>
    </extension>
  </birthDate>
  <multipleBirthInteger value="2"/>
  <managingOrganization>
    <reference value="#org1"/>
  </managingOrganization>
</Patient>
"""
SPEC_JSON = {
    "resourceType": "Patient",
    "id": "spec",
    "contained": [{"resourceType": "Organization", "id": "org1", "name": "Acme & Sons"}],
    "extension": [{"url": "http://example.org/fhir/StructureDefinition/rank", "valueDecimal": 1.5}],
    "text": {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Peter <b>Chalmers</b> &amp; co</p><br/></div>',
    },
    "active": True,
    "name": [
        {
            "id": "n1",
            "family": "Chalmers",
            "given": ["Peter", None],
            "_given": [
                None,
                {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                            "valueCode": "MID",
                        }
                    ]
                },
            ],
        }
    ],
    "birthDate": "1970-03-30",
    "_birthDate": {
        "id": "314159",
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/text", "valueString": "Easter\n1970"}],
    },
    "multipleBirthInteger": 2,
    "managingOrganization": {"reference": "#org1"},
}


def test_spec_xml_maps_to_spec_json():
    assert from_xml(SPEC_XML) == SPEC_JSON
    assert from_xml(SPEC_XML.encode("utf-8")) == SPEC_JSON


def test_json_to_xml_follows_the_xml_rules():
    text = to_xml(SPEC_JSON)
    root = ET.fromstring(text.encode("utf-8"))  # well-formed, independent parser
    assert root.tag == f"{F}Patient"
    children = [c.tag.removeprefix(F) for c in root]
    # R4 definition order (xml.html: "elements SHALL appear in the order defined")
    assert children == [
        "id", "text", "contained", "extension", "active", "name", "birthDate",
        "multipleBirthInteger", "managingOrganization",
    ]  # fmt: skip
    assert root.find(f"{F}contained/{F}Organization/{F}id").get("value") == "org1"
    assert root.find(f"{F}extension").get("url").endswith("/rank")  # Extension.url is an attribute
    assert root.find(f"{F}extension/{F}valueDecimal").get("value") == "1.5"
    assert root.find(f"{F}name").get("id") == "n1"  # element id is an attribute
    given = root.findall(f"{F}name/{F}given")
    assert given[0].get("value") == "Peter" and given[1].get("value") is None
    assert given[1].find(f"{F}extension/{F}valueCode").get("value") == "MID"
    birth = root.find(f"{F}birthDate")
    assert birth.get("id") == "314159" and birth.get("value") == "1970-03-30"
    assert birth.find(f"{F}extension/{F}valueString").get("value") == "Easter\n1970"  # newline survives
    div = root.find(f"{F}text/{{http://www.w3.org/1999/xhtml}}div")
    assert (
        div is not None
        and div.find("{http://www.w3.org/1999/xhtml}p/{http://www.w3.org/1999/xhtml}b").text == "Chalmers"
    )
    assert from_xml(text) == SPEC_JSON
    pretty = to_xml(SPEC_JSON, pretty=True)
    assert '\n  <id value="spec"/>' in pretty and from_xml(pretty) == SPEC_JSON


def test_table_comes_from_r4_definitions():
    types, resources = element_table()
    assert resources == known_types() and len(resources) == 148  # as validation.py: R4 types + abstract ones
    assert {"MedicinalProduct", "EffectEvidenceSynthesis", "SubstanceSpecification"} <= resources  # R4 only
    assert types["Patient"]["name"] == ("HumanName", True)
    assert types["Patient"]["birthDate"] == ("string", False)
    assert types["Observation"]["valueQuantity"] == ("Quantity", False)
    assert types["Bundle.entry"]["resource"] == ("Resource", False)
    assert types["Narrative"]["div"] == ("xhtml", False)
    assert types["Quantity"]["value"] == ("decimal", False)
    assert list(types["Narrative"]) == ["id", "extension", "status", "div"]


def test_table_agrees_with_fhirpathpy_r4_model():
    """A second generated source of the R4 definitions: primitive vs complex must agree on every path."""
    from fhirpathpy.models import models

    types, _ = element_table()
    fp_primitives = {
        "boolean", "integer", "decimal", "string", "uri", "url", "canonical", "code", "id", "oid", "uuid",
        "markdown", "base64Binary", "instant", "date", "dateTime", "time", "positiveInt", "unsignedInt", "xhtml",
    }  # fmt: skip
    checked, disagree = 0, []
    for path, fp_type in models["r4"]["path2Type"].items():
        parts = path.split(".")
        if parts[0] not in types or parts[-1] in ("id", "extension", "modifierExtension"):
            continue  # MetadataResource is an abstract interface, not a type
        tname, code = parts[0], None
        for el in parts[1:]:
            code = types[tname][el][0]
            tname = code
        checked += 1
        if (fp_type in fp_primitives or fp_type.startswith("System.")) != (code in PRIMITIVES):
            disagree.append(path)
    assert disagree == [] and checked > 5700


@pytest.fixture(scope="module")
def official_examples(examples_dir) -> list[tuple[str, dict]]:
    files = sorted(p for p in examples_dir.glob("*.json") if p.name != "package.json")
    return [(p.name, json.loads(p.read_text())) for p in files]


def test_official_examples_round_trip(official_examples):
    same, changed = 0, []
    for i, (name, res) in enumerate(official_examples):
        back = from_xml(to_xml(res, pretty=i % 2 == 0).encode("utf-8"))
        if back == res:
            same += 1
        else:
            changed.append(name)
    print(f"XML round trip: {same}/{len(official_examples)} official examples identical")
    assert changed == [] and same == len(official_examples) == 564


def test_element_order_matches_the_official_examples(official_examples):
    """The HL7 publisher writes example JSON in definition order, an independent check of the table's order.

    Only the R4-only types (no R4B model, so their own elements are in alphabetical order) may differ.
    """
    types, _ = element_table()
    out_of_order: set[str] = set()

    def walk(obj: dict, tname: str) -> None:
        defs = list(types[tname])
        keys = [k.lstrip("_") for k in obj if k != "resourceType" and not (tname == "Extension" and k == "url")]
        positions = [defs.index(k) for k in dict.fromkeys(keys)]
        if positions != sorted(positions):
            out_of_order.add(tname)
        for key, value in obj.items():
            code = types[tname][key][0] if not key.startswith("_") and key != "resourceType" else "string"
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and code == "Resource":
                    walk(item, item["resourceType"])
                elif isinstance(item, dict) and code not in PRIMITIVES:
                    walk(item, code)

    for _, res in official_examples:
        walk(res, res["resourceType"])
    assert out_of_order and all(t.split(".")[0] in R4_ONLY_TYPES for t in out_of_order), sorted(out_of_order)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<Patient xmlns='http://hl7.org/fhir'><active value='true'></Patient>", "Malformed XML: mismatched tag"),
        ("<Patient><active value='true'/></Patient>", "not in the FHIR namespace"),
        ("<Patient xmlns='http://hl7.org/fhir'><colour value='red'/></Patient>", "Patient.colour: unknown element"),
        ("<Patient xmlns='http://hl7.org/fhir'><active value='yes'/></Patient>", "'yes' is not a boolean"),
        (
            "<Patient xmlns='http://hl7.org/fhir'><active value='true'/><active value='false'/></Patient>",
            "Patient.active: repeats",
        ),
        ("<Patient xmlns='http://hl7.org/fhir'><gender/></Patient>", "neither a value nor an extension"),
        ("<Nonsense xmlns='http://hl7.org/fhir'/>", "not an R4 resource type"),
        (
            "<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>"
            "<Patient xmlns='http://hl7.org/fhir'><id value='&lol2;'/></Patient>",
            "DTDs and entities are not allowed",
        ),
        ("", "Empty XML body"),
    ],
)
def test_bad_xml_is_named(text, message):
    with pytest.raises(FhirXmlError, match=message):
        from_xml(text)


def test_json_that_xml_cannot_hold():
    with pytest.raises(FhirXmlError, match="Patient.colour: unknown element"):
        to_xml({"resourceType": "Patient", "colour": "red"})
    with pytest.raises(FhirXmlError, match="Patient.name: expected an array"):
        to_xml({"resourceType": "Patient", "name": {"family": "x"}})
    with pytest.raises(FhirXmlError, match="not well-formed XHTML"):
        to_xml({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>unclosed"}})


# -- REST --------------------------------------------------------------------------------------------
PATIENT_XML = """<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="urn:xml-test"/><value value="x-1"/></identifier>
  <name><family value="Xmlberg"/><given value="Ada"/></name>
  <gender value="female"/>
  <birthDate value="1980-02-01"/>
</Patient>"""


def test_create_read_search_in_xml(client):
    r = client.post("/fhir/Patient", content=PATIENT_XML, headers={"Content-Type": XML, "Accept": XML})
    assert r.status_code == 201 and r.headers["content-type"].startswith(XML)
    created = from_xml(r.content)
    assert created["name"] == [{"family": "Xmlberg", "given": ["Ada"]}] and created["meta"]["versionId"] == "1"
    rid = created["id"]

    r = client.get(f"/fhir/Patient/{rid}?_format=xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith(XML)
    assert from_xml(r.content)["birthDate"] == "1980-02-01"
    r = client.get(f"/fhir/Patient/{rid}", headers={"Accept": "application/fhir+json;q=0.5, application/fhir+xml"})
    assert r.headers["content-type"].startswith(XML)
    r = client.get(f"/fhir/Patient/{rid}", headers={"Accept": "application/fhir+xml;q=0.5, application/fhir+json"})
    assert r.json()["id"] == rid  # JSON preferred by q
    assert client.get(f"/fhir/Patient/{rid}", headers={"Accept": "*/*"}).json()["id"] == rid

    r = client.get("/fhir/Patient?family=Xmlberg&_format=application/fhir%2Bxml")
    assert r.status_code == 200 and r.headers["content-type"].startswith(XML)
    bundle = from_xml(r.content)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert [e["resource"]["id"] for e in bundle["entry"]] == [rid] and bundle["total"] == 1

    # update in XML with If-Match, then JSON sees the change
    updated = PATIENT_XML.replace('<gender value="female"/>', '<gender value="other"/>')
    r = client.put(
        f"/fhir/Patient/{rid}",
        content=updated.replace(
            '<Patient xmlns="http://hl7.org/fhir">', f'<Patient xmlns="{FHIR_NS}"><id value="{rid}"/>'
        ),
        headers={"Content-Type": "text/xml", "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200 and r.json()["gender"] == "other"
    history = from_xml(client.get(f"/fhir/Patient/{rid}/_history", headers={"Accept": "text/xml"}).content)
    assert history["type"] == "history" and [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_xml_errors_are_operation_outcomes(client):
    r = client.post(
        "/fhir/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'><name>", headers={"Content-Type": XML}
    )
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    assert "Malformed XML" in r.json()["issue"][0]["diagnostics"]
    r = client.post(
        "/fhir/Patient",
        content=b"<Patient xmlns='http://hl7.org/fhir'><colour value='red'/></Patient>",
        headers={"Content-Type": "application/xml", "Accept": XML},
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith(XML)
    outcome = from_xml(r.content)
    assert outcome["issue"][0]["expression"] == ["Patient.colour"]
    r = client.get("/fhir/Patient/does-not-exist", headers={"Accept": XML})
    assert r.status_code == 404 and from_xml(r.content)["issue"][0]["code"] == "not-found"
    r = client.get("/fhir/metadata?_format=turtle")
    assert r.status_code == 406 and r.json()["issue"][0]["expression"] == ["_format"]


def test_capability_statement_in_xml_advertises_xml(client):
    r = client.get("/fhir/metadata", headers={"Accept": "application/xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith(XML)
    cap = from_xml(r.content)
    assert cap["resourceType"] == "CapabilityStatement"
    assert {"application/fhir+xml", "xml", "application/fhir+json"} <= set(cap["format"])


def test_transaction_bundle_in_xml(client):
    body = f"""<Bundle xmlns="{FHIR_NS}"><type value="transaction"/>
      <entry><fullUrl value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/>
        <resource><Patient><name><family value="Xmlbundle"/></name></Patient></resource>
        <request><method value="POST"/><url value="Patient"/></request></entry>
      <entry><resource><Observation><status value="final"/>
          <code><text value="weight"/></code>
          <subject><reference value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/></subject>
          <valueQuantity><value value="72.5"/><unit value="kg"/></valueQuantity></Observation></resource>
        <request><method value="POST"/><url value="Observation"/></request></entry>
    </Bundle>"""
    r = client.post("/fhir", content=body, headers={"Content-Type": XML, "Accept": XML})
    assert r.status_code == 200, r.text
    out = from_xml(r.content)
    assert out["type"] == "transaction-response" and [e["response"]["status"][:3] for e in out["entry"]] == [
        "201",
        "201",
    ]
    obs_id = out["entry"][1]["response"]["location"].split("/")[1]
    obs = client.get(f"/fhir/Observation/{obs_id}").json()
    assert obs["valueQuantity"]["value"] == 72.5 and obs["subject"]["reference"].startswith("Patient/")


def test_encodings_foreign_attributes_and_prefixed_xhtml():
    doc = (
        '<?xml version="1.0" encoding="{enc}"?>\n<Patient xmlns="http://hl7.org/fhir" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir p.xsd">'
        '<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">José <br/>Müller</div ></text>'
        '<name><family value="Müller"/></name></Patient>'
    )
    want = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">José <br/>Müller</div >'},
        "name": [{"family": "Müller"}],
    }
    assert from_xml(doc.format(enc="ISO-8859-1").encode("latin-1")) == want
    assert from_xml(doc.format(enc="UTF-16").encode("utf-16")) == want
    assert from_xml(doc.format(enc="UTF-8")) == want
    # an XHTML prefix declared outside the div: the div is re-serialised with a default namespace
    prefixed = (
        '<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><text>'
        '<status value="generated"/><h:div>a<h:b>b</h:b></h:div></text></Patient>'
    )
    assert from_xml(prefixed)["text"]["div"] == '<div xmlns="http://www.w3.org/1999/xhtml">a<b>b</b></div>'
    with pytest.raises(FhirXmlError, match="use the value attribute"):
        from_xml('<Patient xmlns="http://hl7.org/fhir"><gender>male</gender></Patient>')
    with pytest.raises(FhirXmlError, match="must be a <div> in the namespace"):
        from_xml('<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Patient>')


def test_stored_content_that_xml_cannot_hold_is_406(client):
    # R4-only types get only generic validation, so an unknown element can be stored ...
    res = {"resourceType": "EffectEvidenceSynthesis", "status": "draft", "colour": "red"}
    rid = client.post("/fhir/EffectEvidenceSynthesis", json=res).json()["id"]
    r = client.get(f"/fhir/EffectEvidenceSynthesis/{rid}?_format=xml")
    # ... but not written as XML: a 406 OperationOutcome (itself in XML) names the element
    assert r.status_code == 406 and r.headers["content-type"].startswith(XML)
    assert "EffectEvidenceSynthesis.colour: unknown element" in from_xml(r.content)["issue"][0]["diagnostics"]


def test_paging_links_keep_the_requested_format(client):
    for i in range(3):
        xml = PATIENT_XML.replace(b"Xmlberg", f"Pagerxml{i}".encode()) if isinstance(PATIENT_XML, bytes) \
            else PATIENT_XML.replace("Xmlberg", f"Pagerxml{i}")
        assert client.post("/fhir/Patient", content=xml, headers={"Content-Type": XML}).status_code == 201
    r = client.get("/fhir/Patient?family=Pagerxml&_count=2&_format=xml")
    bundle = from_xml(r.content)
    nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert "_format=xml" in nxt
    page2 = client.get(nxt.replace("http://testserver", ""))
    assert page2.status_code == 200 and page2.headers["content-type"].startswith(XML)
    assert len(from_xml(page2.content)["entry"]) == 1
