"""CDS Hooks 2.0 service: the 21 PDDI-CDS IG requests, coordination, prefetch fetch, errors, spec examples."""

from __future__ import annotations

import json

import httpx
import pytest

from smartcare.hospital.cds import hooks, hooks_api
from smartcare.hospital.cds.hooks_models import CONTEXTS, Card, CDSRequest, CDSResponse, DiscoveryResponse, Feedback

SERVICE = {
    "order-select": "pddi-order-select",
    "order-sign": "pddi-order-sign",
    "medication-prescribe": "pddi-medication-prescribe",
}
W_CRIT = [("critical", "Warfarin + ketorolac: use only if benefit outweighs risk")]
DIG = [("warning", "Digoxin level 0.7 ng/mL"), ("info", "Renal function and electrolytes checked and normal")]
# Expected cards per request, each evaluated alone (no earlier order-select in the same session).
EXPECTED = {
    "warfarin-nsaids-order-select-coordination": W_CRIT,
    "warfarin-nsaids-order-select-no-coordination": W_CRIT,
    "warfarin-nsaids-order-sign-coordination": W_CRIT,
    "warfarin-nsaids-order-sign-no-coordination": W_CRIT,
    "digoxin-cyclosporine-order-select-coordination": DIG,
    "digoxin-cyclosporine-order-select-no-coordination": DIG,
    "digoxin-cyclosporine-order-sign-coordination": DIG,
    "digoxin-cyclosporine-order-sign-no-coordination": DIG,
    "multi-update-draft-orders-1": W_CRIT,  # ketorolac selected; warfarin active; prior GI bleed
    "multi-update-draft-orders-2": DIG,  # digoxin selected; ketorolac draft not evaluated at order-select
    "multi-update-draft-orders-3": W_CRIT,  # order-sign: ketorolac + digoxin drafts, warfarin, no cyclosporine
    "multi-update-draft-orders-4": DIG,  # order-sign: cyclosporine active; no warfarin
    "request-warfarin-nsaid-scenario-01": [("info", "Warfarin + diclofenac: no special precautions")],
    "request-warfarin-nsaid-scenario-02": [("warning", "Warfarin + ibuprofen: assess risk")],  # PPI
    "request-warfarin-nsaid-scenario-03": [("critical", "Warfarin + ibuprofen: use only if")],  # >65, steroid
    "request-warfarin-nsaid-scenario-04": [("critical", "Warfarin + ibuprofen: use only if")],  # UGIB, 2 NSAIDs
    "request-warfarin-nsaid-scenario-05": [("critical", "Warfarin + ibuprofen: use only if")],  # spironolactone
    "request-digoxin-cyclosporine-scenario-01": [
        ("critical", "Digoxin level 2.3 ng/mL above range"),
        ("warning", "Digoxin toxicity risk factors"),
    ],  # + furosemide
    "request-digoxin-cyclosporine-scenario-02": [
        ("warning", "No digoxin level on record"),
        ("warning", "Digoxin toxicity risk factors"),
    ],  # K 0.9
    "request-digoxin-cyclosporine-scenario-03": [
        ("warning", "No digoxin level on record"),
        ("warning", "Digoxin toxicity risk factors"),
    ],
    "request-digoxin-cyclosporine-scenario-04": [
        ("critical", "Digoxin level 2.3 ng/mL above range"),
        ("warning", "Digoxin toxicity risk factors"),
    ],
}


UNREACHABLE: list[str] = []  # URLs the fixture's offline fhirServer was asked for


def _offline(request: httpx.Request) -> httpx.Response:
    UNREACHABLE.append(str(request.url))
    raise httpx.ConnectError("no network in tests", request=request)


@pytest.fixture()
def client(hooks_client):
    """The hooks app; its fhirServer is unreachable (the IG requests name https://dikb.org/baseDstu3)."""
    with hooks_client(_offline) as c:
        yield c


@pytest.fixture(scope="module")
def requests_dir(shared_data):
    return shared_data / "hospital/pddi-cds-hooks/requests"


def _load(requests_dir, name):
    return json.loads((requests_dir / f"{name}.json").read_text())


def _summary(cards):
    return [(c["indicator"], c["summary"]) for c in cards]


def _matches(cards, expected):
    if len(cards) != len(expected):
        return False
    return all(c["indicator"] == i and c["summary"].startswith(p) for c, (i, p) in zip(cards, expected, strict=True))


def test_the_21_ig_requests_give_the_expected_cards(client, requests_dir):
    assert len(list(requests_dir.glob("*.json"))) == len(EXPECTED) == 21
    matched = 0
    client.app.dependency_overrides[hooks_api.get_cache] = hooks.CoordinationCache  # each request alone
    for name, expected in EXPECTED.items():
        body = _load(requests_dir, name)
        resp = client.post(f"/cds-services/{SERVICE[body['hook']]}", json=body)
        assert resp.status_code == 200, (name, resp.text)
        cards = resp.json()["cards"]
        CDSResponse.model_validate(resp.json())
        assert _matches(cards, expected), (name, _summary(cards))
        matched += 1
        for card in cards:
            assert card["source"]["label"] and card["detail"]
            if card["indicator"] in ("critical",) and "Warfarin" in card["summary"]:
                kinds = [a["type"] for s in card["suggestions"] for a in s["actions"]]
                assert "delete" in kinds or "update" in kinds  # removes the draft NSAID
                assert any(
                    a.get("resource", {}).get("resourceType") == "DetectedIssue"
                    for s in card["suggestions"]
                    for a in s["actions"]
                )
    assert matched == 21


def test_replace_suggestion_swaps_nsaid_for_acetaminophen(client, requests_dir):
    body = _load(requests_dir, "warfarin-nsaids-order-select-no-coordination")
    card = client.post("/cds-services/pddi-order-select", json=body).json()["cards"][0]
    replace = next(s for s in card["suggestions"] if s["label"].startswith("Replace"))
    delete, create = replace["actions"]
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": "MedicationRequest/ketorolac-draft-order-test",
    }
    assert create["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "313782"


@pytest.mark.parametrize("pair", ["warfarin-nsaids", "digoxin-cyclosporine"])
def test_order_sign_filters_cards_shown_at_order_select_only_when_configured(client, requests_dir, pair):
    select = _load(requests_dir, f"{pair}-order-select-coordination")
    shown = client.post("/cds-services/pddi-order-select", json=select).json()["cards"]
    assert shown
    sign = client.post("/cds-services/pddi-order-sign", json=_load(requests_dir, f"{pair}-order-sign-coordination"))
    assert sign.json()["cards"] == []  # filter-out-repeated-alerts: already shown at order-select
    again = client.post("/cds-services/pddi-order-sign", json=_load(requests_dir, f"{pair}-order-sign-no-coordination"))
    assert _summary(again.json()["cards"]) == _summary(shown)  # no filtering requested


def test_discovery_lists_services_with_prefetch(client):
    body = client.get("/cds-services").json()
    DiscoveryResponse.model_validate(body)
    hooks_seen = {s["hook"] for s in body["services"]}
    assert {"patient-view", "order-select", "order-sign"} <= hooks_seen
    assert all(s["prefetch"] for s in body["services"])


@pytest.mark.parametrize(
    "body,reason",
    [
        ({"hook": "order-select", "context": {"patientId": "1"}}, "hookInstance"),
        ({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "1", "draftOrders": {}}}, "answers hook"),
        ({"hook": "order-select", "hookInstance": "x", "context": {}}, "patientId"),
        (
            {
                "hook": "order-select",
                "hookInstance": "x",
                "context": {
                    "patientId": "1",
                    "selections": ["MedicationRequest/9"],
                    "draftOrders": {"resourceType": "Bundle", "entry": []},
                },
            },
            "not in context.draftOrders",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_requests_get_400_with_reason(client, body, reason):
    resp = client.post("/cds-services/pddi-order-select", json=body)
    assert resp.status_code == 400 and reason in resp.json()["detail"]


@pytest.mark.parametrize(
    "service,context,reason",
    [
        ("pddi-order-sign", {"patientId": "1"}, "context: draftOrders is required"),
        ("pddi-order-sign", {"patientId": "1", "draftOrders": {"x": 1}}, "context.draftOrders: must be a FHIR Bundle"),
        ("pddi-order-select", {"patientId": "1", "draftOrders": {"resourceType": "Bundle"}}, "context.selections"),
        ("pddi-medication-prescribe", {"patientId": "1"}, "context: medications is required"),
    ],
)
def test_order_hooks_need_their_draft_orders(client, service, context, reason):
    hook = client.get("/cds-services").json()["services"]
    hook = next(s["hook"] for s in hook if s["id"] == service)
    resp = client.post(f"/cds-services/{service}", json={"hook": hook, "hookInstance": "x", "context": context})
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"].startswith(reason), resp.json()["detail"]


def test_invalid_json_and_unknown_service(client):
    resp = client.post(
        "/cds-services/pddi-order-select", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["detail"]
    assert client.post("/cds-services/nope", json={}).status_code == 404


def test_missing_prefetch_is_fetched_from_fhir_server_with_token(requests_dir, hooks_client):
    body = _load(requests_dir, "warfarin-nsaids-order-sign-no-coordination")
    prefetch = body.pop("prefetch")
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {
        "access_token": "tok123",
        "token_type": "Bearer",
        "scope": "patient/*.read",
        "expires_in": 300,
        "subject": "cds",
    }
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.url.params.get("patient"), request.headers.get("authorization")))
        kind = request.url.path.rsplit("/", 1)[-1]
        bundle = {"Condition": prefetch["item6"], "MedicationRequest": prefetch["item2"]}.get(
            kind, {"resourceType": "Bundle", "type": "searchset", "entry": []}
        )
        return httpx.Response(200, json=bundle)

    with hooks_client(answer) as c:
        cards = c.post("/cds-services/pddi-order-sign", json=body).json()["cards"]
    assert _matches(cards, W_CRIT)
    assert ("/fhir/Condition", "f101", "Bearer tok123") in seen and len(seen) == len(hooks.MED_PREFETCH)


def test_feedback_endpoint(client):
    fb = {
        "feedback": [
            {
                "card": "abc",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "s1"}],
                "outcomeTimestamp": "2024-01-01T00:00:00Z",
            }
        ]
    }
    resp = client.post("/cds-services/pddi-order-sign/feedback", json=fb)
    assert resp.status_code == 200 and resp.json() == {"received": 1}
    assert hooks_api.FEEDBACK[-1]["card"] == "abc"
    bad = client.post("/cds-services/pddi-order-sign/feedback", json={"feedback": [{"card": "x", "outcome": "maybe"}]})
    assert bad.status_code == 400


def test_patient_view_score_cards(client):
    obs = [("9279-1", 26), ("59408-5", 91), ("8480-6", 88), ("8867-4", 135), ("8310-5", 34.8)]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"o{i}",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": c}]},
                    "valueQuantity": {"value": v},
                }
            }
            for i, (c, v) in enumerate(obs)
        ],
    }
    body = {
        "hook": "patient-view",
        "hookInstance": "h1",
        "context": {"patientId": "p1", "userId": "Practitioner/1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1940-01-01", "gender": "male"},
            "observations": bundle,
        },
    }
    cards = client.post("/cds-services/smartcare-scores", json=body).json()["cards"]
    news2 = next(c for c in cards if c["summary"].startswith("NEWS2"))
    assert news2["indicator"] == "critical" and "Royal College" in news2["detail"]
    assert news2["extension"]["smartcare-score"]["references"]


def test_spec_examples_validate_against_models(shared_data):
    base = shared_data / "hospital/cds-hooks-spec-examples"
    index = json.loads((base / "index.json").read_text())
    models = {"request": CDSRequest, "response": CDSResponse, "card": Card, "discovery": DiscoveryResponse}
    n = 0
    for item in index:
        doc = json.loads((base / "examples" / item["file"]).read_text())
        if item["kind"] in models:
            models[item["kind"]].model_validate(doc)
        else:  # a hook's context example
            assert isinstance(doc.get("context"), dict), item["file"]
            hook = item["file"].split("__")[1]
            if hook in CONTEXTS:
                CONTEXTS[hook].model_validate(doc["context"])
        n += 1
    assert n == 23
    Feedback.model_validate({"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "t"}]})


def test_prefetch_fetch_runs_off_the_event_loop(hooks_client):
    """A blocking prefetch fetch must not stall the event loop (fhirServer may be this very service)."""
    import asyncio

    on_loop = []

    def answer(request: httpx.Request) -> httpx.Response:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})

    body = {"hook": "patient-view", "hookInstance": "x", "fhirServer": "https://ehr.example.org/fhir",
            "context": {"patientId": "p1", "userId": "Practitioner/1"}}
    with hooks_client(answer) as c:
        assert c.post("/cds-services/smartcare-scores", json=body).status_code == 200
    assert on_loop and not any(on_loop)
