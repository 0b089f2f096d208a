"""Real FHIR clients (fhirclient, fhirpy) drive the server over HTTP: chained search with _include,
paging over several pages, create, and update with If-Match."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from smartcare.hospital.fhir.api import router
from smartcare.hospital.fhir.deps import get_engine


@pytest.fixture(scope="module")
def base_url(engine) -> Iterator[str]:
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    app.dependency_overrides[get_engine] = lambda: engine
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/fhir"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def fhirpy_client(base_url):
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(base_url)
    pat = client.resource("Patient", name=[{"family": "Clientson", "given": ["Ada"]}], gender="female")
    pat.save()
    for i in range(23):
        client.resource(
            "Observation",
            status="final",
            code={"coding": [{"system": "urn:c", "code": "hr"}]},
            subject={"reference": f"Patient/{pat.id}"},
            valueQuantity={"value": 60 + i},
        ).save()
    return client


def test_fhirpy_chained_search_include_and_paging(fhirpy_client):
    search = fhirpy_client.resources("Observation").search(**{"subject:Patient.name": "clientson"}).limit(10)
    everything = search.fetch_all()  # follows the next links
    assert len(everything) == 23 and len({o.id for o in everything}) == 23
    raw = search.include("Observation", "subject").fetch_raw()
    modes = [e["search"]["mode"] for e in raw["entry"]]
    assert raw["total"] == 23 and modes.count("match") == 10 and modes.count("include") == 1
    assert any(lk["relation"] == "next" for lk in raw["link"])


def test_fhirpy_create_and_update_with_if_match(base_url, fhirpy_client):
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import MultipleResourcesFound  # fhirpy's name for HTTP 412

    pat = fhirpy_client.resource("Patient", name=[{"family": "Locke"}])
    pat.save()
    assert pat.id and pat["meta"]["versionId"] == "1"
    v1 = SyncFHIRClient(base_url, extra_headers={"If-Match": 'W/"1"'})
    v1.resource("Patient", id=pat.id, name=[{"family": "Locke"}], active=True).save()
    fresh = fhirpy_client.reference("Patient", pat.id).to_resource()
    assert fresh["active"] is True and fresh["meta"]["versionId"] == "2"
    with pytest.raises(MultipleResourcesFound, match="Version conflict"):  # stale If-Match: 412
        v1.resource("Patient", id=pat.id, name=[{"family": "Lost"}]).save()
    assert fhirpy_client.reference("Patient", pat.id).to_resource()["name"][0]["family"] == "Locke"


def test_fhirclient_search_create_update(base_url, fhirpy_client):
    from fhirclient import client
    from fhirclient.models.humanname import HumanName
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient

    smart = client.FHIRClient(settings={"app_id": "smartcare-test", "api_base": base_url + "/"})
    found = list(Patient.where(struct={"family": "clientson"}).perform_resources_iter(smart.server))
    assert [p.name[0].family for p in found] == ["Clientson"]
    query = {"subject:Patient.name": "clientson", "_include": "Observation:subject", "_count": "5"}
    pages = list(Observation.where(struct=query).perform_iter(smart.server))  # follows next links
    assert len(pages) == 5 and sum(e.search.mode == "match" for b in pages for e in b.entry) == 23
    bundle = pages[0]
    assert bundle.total == 23 and len(bundle.entry) == 6
    assert {e.search.mode for e in bundle.entry} == {"match", "include"}
    new = Patient({"name": [{"family": "Fhirclient"}]})
    created = new.create(smart.server)
    pid = created["id"]
    pat = Patient.read(pid, smart.server)
    pat.name = [HumanName({"family": "Fhirclient", "given": ["Updated"]})]
    pat.update(smart.server)
    assert Patient.read(pid, smart.server).name[0].given == ["Updated"]
    assert Patient.read(pid, smart.server).meta.versionId == "2"
