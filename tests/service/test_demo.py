"""`smartcare demo load`: generated records without shared data, Synthea with it, idempotent."""

from __future__ import annotations

from fastapi.testclient import TestClient

from smartcare.core.settings import Settings
from smartcare.service.app import create_app
from smartcare.service.demo import load_demo


def test_generated_demo_without_shared_data(tmp_path):
    settings = Settings(var=tmp_path / "var", data=tmp_path / "no-data")
    first = load_demo(settings)
    assert first["source"] == "generated" and first["resources"] == 22
    again = load_demo(settings)
    assert again == {"source": "existing", "patients": 3, "resources": 0}
    client = TestClient(create_app(settings))
    bundle = client.get("/fhir/Observation", params={"code": "http://loinc.org|9279-1"}).json()
    assert bundle["total"] == 3 if "total" in bundle else len(bundle["entry"]) == 3


def test_synthea_demo_with_shared_data(tmp_path, shared_data):
    settings = Settings(var=tmp_path / "var", data=shared_data)
    done = load_demo(settings, limit=1)
    assert done["source"] == "synthea" and done["bundles"] == 1 and done["resources"] > 50
