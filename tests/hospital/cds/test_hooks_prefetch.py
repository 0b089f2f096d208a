"""CDS Hooks 2.0 prefetch: templates that ask for what the scores need, paging through ``next`` links,
completing a partial prefetch from fhirServer, and 412 when needed data cannot be obtained."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.cds import hooks, hooks_api
from smartcare.hospital.cds.prefetch import MAX_PAGES, score_loincs
from smartcare.service.errors import install_error_handlers

BASE = "https://ehr.example.org/fhir"
NEWS2 = [("9279-1", 26), ("59408-5", 91), ("8480-6", 88), ("8867-4", 135), ("8310-5", 34.8)]  # NEWS2 >= 7


def _obs(i: int, code: str, value: float, day: int) -> dict:
    return {
        "resourceType": "Observation", "id": f"o{i}", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": f"2024-01-{day:02d}T08:00:00Z", "valueQuantity": {"value": value},
    }


def _synthea_like() -> list[dict]:
    """94 Observations: 89 older normal-ish vitals/labs, then the 5 abnormal NEWS2 vitals of the last day."""
    normal = [("9279-1", 16), ("8867-4", 72), ("8480-6", 122), ("8310-5", 36.8), ("2339-0", 95)]
    older = [_obs(i, *normal[i % len(normal)], day=1 + i % 20) for i in range(89)]
    return older + [_obs(100 + i, code, v, day=28) for i, (code, v) in enumerate(NEWS2)]


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1940-01-01", "gender": "male"}
CONDITIONS = [
    {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}}
    for i, code in enumerate(["42343007", "38341003", "44054006", "230690007"], start=1)  # CHF, HTN, DM, stroke
]


class FakeFhir:
    """A FHIR server that pages searchsets 20 at a time (oldest first, ignoring _sort) and logs requests."""

    def __init__(self, status: int = 200, token: str | None = "tok"):
        self.status, self.token, self.seen = status, token, []
        self.data = {"Patient": [PATIENT], "Observation": _synthea_like(), "Condition": CONDITIONS,
                     "MedicationRequest": []}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, dict(request.url.params), request.headers.get("authorization")))
        if self.status != 200:
            return httpx.Response(self.status, json={"resourceType": "OperationOutcome", "issue": []})
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401)
        rtype = request.url.path.rsplit("/", 1)[-1]
        if rtype.startswith("Patient") and "/" in request.url.path[len("/fhir/"):]:
            return httpx.Response(200, json=PATIENT)
        items = self.data.get(rtype, [])
        codes = request.url.params.get("code")
        if codes:
            items = [r for r in items if r["code"]["coding"][0]["code"] in codes.split(",")]
        offset = int(request.url.params.get("_offset", 0))
        page = items[offset:offset + 20]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(items),
                  "entry": [{"resource": r} for r in page], "link": [{"relation": "self", "url": str(request.url)}]}
        if offset + 20 < len(items):
            bundle["link"].append({"relation": "next", "url": f"{BASE}/{rtype}?_offset={offset + 20}"})
        return httpx.Response(200, json=bundle)


def _body(prefetch: dict | None = None, server: bool = True, token: str = "tok") -> dict:
    body = {"hook": "patient-view", "hookInstance": "h1", "context": {"patientId": "p1", "userId": "Practitioner/1"}}
    if server:
        body["fhirServer"] = BASE
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "scope": "patient/*.read",
                                     "expires_in": 300, "subject": "cds"}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def _card(cards: list[dict], score: str) -> dict:
    return next(c for c in cards if c["summary"].startswith(score))


def test_templates_ask_for_the_score_observations_newest_first_in_big_pages():
    tpl = hooks.service("smartcare-scores")["prefetch"]["observations"]
    query = parse_qs(urlsplit("x/" + tpl).query)
    assert query["_sort"] == ["-date"] and query["_count"] == ["200"]
    codes = query["code"][0].split(",")
    assert {"9279-1", "59408-5", "8480-6", "8867-4", "8310-5", "2160-0"} <= set(codes) == set(score_loincs())
    assert all("_count=200" in t for k, t in hooks.MED_PREFETCH.items() if k != "item1")


def test_observations_are_fetched_through_every_next_page_with_the_token(hooks_client):
    fake = FakeFhir()
    resp = hooks_client(fake).post("/cds-services/smartcare-scores", json=_body())
    assert resp.status_code == 200, resp.text
    news2 = _card(resp.json()["cards"], "NEWS2")
    assert news2["extension"]["smartcare-score"]["total"] >= 7 and news2["indicator"] == "critical"
    obs_calls = [s for s in fake.seen if s[0] == "/fhir/Observation"]
    assert len(obs_calls) == 5 and obs_calls[0][1]["_sort"] == "-date"  # 94 observations: 20 a page
    assert all(auth == "Bearer tok" for _, _, auth in fake.seen)
    assert resp.json()["extension"]["smartcare-prefetch"]["fetched"] == [
        "patient", "observations", "conditions", "medications"]


def test_a_paged_prefetch_bundle_is_completed_from_fhir_server(hooks_client):
    fake = FakeFhir()
    first = fake(httpx.Request("GET", f"{BASE}/Observation?patient=p1", headers={"authorization": "Bearer tok"}))
    prefetch = {"patient": PATIENT, "observations": first.json(), "conditions": None, "medications": None}
    fake.seen.clear()
    resp = hooks_client(fake).post("/cds-services/smartcare-scores", json=_body(prefetch))
    assert resp.status_code == 200 and _card(resp.json()["cards"], "NEWS2")["indicator"] == "critical"
    assert [s[1].get("_offset") for s in fake.seen] == ["20", "40", "60", "80"]  # only the missing pages


def test_a_partial_prefetch_is_completed_and_null_keys_are_not_refetched(hooks_client):
    fake = FakeFhir()
    obs = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": o} for o in _synthea_like()]}
    resp = hooks_client(fake).post("/cds-services/smartcare-scores",
                           json=_body({"patient": PATIENT, "observations": obs, "medications": None}))
    assert resp.status_code == 200
    assert [s[0] for s in fake.seen] == ["/fhir/Condition"]  # only the key the client left out
    assert resp.json()["extension"]["smartcare-prefetch"] == {"fetched": ["conditions"], "unavailable": {}}
    cha = _card(resp.json()["cards"], "CHA2DS2-VASc")["extension"]["smartcare-score"]
    chf = next(c for c in cha["criteria"] if c["id"] == "chf")
    assert chf["points"] == 1 and "Condition/c1" in chf["references"]
    assert cha["total"] == 7  # CHF 1 + HTN 1 + age >= 75 2 + DM 1 + stroke 2


@pytest.mark.parametrize(
    "handler,body,reason",
    [
        (FakeFhir(), _body(server=False), "no fhirServer"),
        (FakeFhir(), _body(token="stale"), "HTTP 401"),
        (FakeFhir(status=403), _body(), "HTTP 403"),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), _body(), "unreachable"),
        (FakeFhir(status=500), _body(), "HTTP 500"),
    ],
)
def test_needed_data_that_cannot_be_obtained_is_a_412(handler, body, reason, hooks_client):
    resp = hooks_client(handler).post("/cds-services/smartcare-scores", json=body)
    assert resp.status_code == 412, resp.text
    detail = resp.json()["detail"]
    assert reason in detail and "observations" in detail and "patient" in detail
    assert resp.json()["title"] == "Precondition Failed"


def test_unreachable_server_is_asked_once_then_given_up(hooks_client):
    calls = []

    def refuse(request):
        calls.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    obs = {"resourceType": "Bundle", "type": "searchset",
           "entry": [{"resource": _obs(i, code, v, 1)} for i, (code, v) in enumerate(NEWS2)]}
    resp = hooks_client(refuse).post("/cds-services/smartcare-scores",
                                     json=_body({"patient": PATIENT, "observations": obs}))
    assert resp.status_code == 200 and len(calls) == 1  # optional keys: reported, not fatal
    unavailable = resp.json()["extension"]["smartcare-prefetch"]["unavailable"]
    assert set(unavailable) == {"conditions", "medications"} and "unreachable" in unavailable["conditions"]
    assert "could not be obtained: conditions" in _card(resp.json()["cards"], "NEWS2")["detail"]


def test_operation_outcome_in_prefetch_is_not_refetched_and_a_needed_one_is_a_412(hooks_client):
    fake = FakeFhir()
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout",
                                                           "diagnostics": "lab system down"}]}
    resp = hooks_client(fake).post("/cds-services/smartcare-scores",
                                   json=_body({"patient": PATIENT, "observations": oo}))
    assert resp.status_code == 412 and "lab system down" in resp.json()["detail"]
    assert "/fhir/Observation" not in [s[0] for s in fake.seen]


def test_next_links_off_the_fhir_server_are_not_followed_with_the_token(hooks_client):
    fake = FakeFhir()
    page = {"resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": "https://evil.example.com/steal?page=2"}]}
    resp = hooks_client(fake).post("/cds-services/smartcare-scores",
                                   json=_body({"patient": PATIENT, "observations": page}))
    assert resp.status_code == 412 and "not on fhirServer" in resp.json()["detail"]
    assert not any("evil" in p for p, _, _ in fake.seen)


def test_endless_paging_stops(hooks_client):
    def loop(request):
        nxt = {"relation": "next", "url": f"{BASE}/Observation?_offset=1"}
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": [], "link": [nxt]})

    resp = hooks_client(loop).post("/cds-services/smartcare-scores", json=_body({"patient": PATIENT}))
    assert resp.status_code == 412 and f"more than {MAX_PAGES} pages" in resp.json()["detail"]


def test_order_hooks_need_their_medications_and_conditions(hooks_client):
    body = {"hook": "order-sign", "hookInstance": "x", "context": {
        "patientId": "p1", "userId": "Practitioner/1",
        "draftOrders": {"resourceType": "Bundle", "entry": []}}}
    resp = hooks_client(FakeFhir()).post("/cds-services/pddi-order-sign", json=body)
    assert resp.status_code == 412 and "item2" in resp.json()["detail"] and "item6" in resp.json()["detail"]
    body["prefetch"] = {"item2": None, "item6": None}  # null: the client has no data -- satisfied
    resp = hooks_client(FakeFhir()).post("/cds-services/pddi-order-sign", json=body)
    assert resp.status_code == 200 and resp.json()["cards"] == []


def test_templates_run_on_our_own_fhir_server(tmp_path):
    """The discovery templates (code list, _sort=-date, _count) are valid searches on smartcare's /fhir."""
    from smartcare.hospital.fhir.api import router as fhir_router
    from smartcare.hospital.fhir.db import init_db, make_engine
    from smartcare.hospital.fhir.deps import get_engine

    engine = init_db(make_engine(f"sqlite:///{tmp_path / 'fhir.db'}"))
    fhir_app = FastAPI()
    fhir_app.include_router(fhir_router, prefix="/fhir")
    fhir_app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(fhir_app) as fhir:
        assert fhir.put("/fhir/Patient/p1", json=PATIENT).status_code in (200, 201)
        for o in _synthea_like():
            o = {**o, "subject": {"reference": "Patient/p1"}}
            assert fhir.put(f"/fhir/Observation/{o['id']}", json=o).status_code in (200, 201)
        assert fhir.put("/fhir/Condition/c1", json=CONDITIONS[0]).status_code in (200, 201)

        app = FastAPI()
        install_error_handlers(app)
        app.include_router(hooks_api.router, prefix="/cds-services")
        app.dependency_overrides[hooks_api.get_http_client] = lambda: fhir
        body = _body(server=False)
        body["fhirServer"] = "http://testserver/fhir"
        resp = TestClient(app).post("/cds-services/smartcare-scores", json=body)
    engine.dispose()
    assert resp.status_code == 200, resp.text
    assert resp.json()["extension"]["smartcare-prefetch"]["unavailable"] == {}
    news2 = _card(resp.json()["cards"], "NEWS2")["extension"]["smartcare-score"]
    assert news2["total"] >= 7 and "Observation/o100" in news2["references"]  # the newest vitals won
