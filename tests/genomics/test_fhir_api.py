"""FHIR Observation of a called variant, and the /api/genomics routes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.core.errors import SmartcareError
from smartcare.genomics.api import router
from smartcare.genomics.call import VariantCall
from smartcare.genomics.fhir import VARIANT_PROFILE, to_fhir_observation
from smartcare.service.errors import install_error_handlers


def _components(obs):
    return {c["code"]["coding"][0]["code"]: c for c in obs["component"]}


def test_observation_follows_genomics_reporting_variant_profile():
    call = VariantCall("chr20", 99, "AT", ["A", "ATT"], (1, 2), 40, 30, [0, 14, 16], [0] * 6, 300.0)
    obs = to_fhir_observation(call, alt_index=2, patient="p1", assembly=("LA14029-5", "GRCh37"))
    assert obs["resourceType"] == "Observation" and obs["meta"]["profile"] == [VARIANT_PROFILE]
    assert obs["code"]["coding"][0] == {"system": "http://loinc.org", "code": "69548-6",
                                        "display": "Genetic variant assessment"}
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "LA9633-4"
    comp = _components(obs)
    assert comp["69547-8"]["valueString"] == "AT" and comp["69551-0"]["valueString"] == "ATT"
    assert comp["81254-5"]["valueRange"] == {"low": {"value": 100}, "high": {"value": 101}}
    assert comp["53034-5"]["valueCodeableConcept"]["coding"][0]["display"] == "Heterozygous"
    assert comp["81258-6"]["valueQuantity"]["value"] == pytest.approx(16 / 30, abs=1e-4)
    assert comp["62374-4"]["valueCodeableConcept"]["coding"][0]["display"] == "GRCh37"
    assert obs["subject"] == {"reference": "Patient/p1"}
    hom = to_fhir_observation({"contig": "q", "pos": 5, "ref": "C", "alts": ["T"], "gt": [1, 1]})
    assert _components(hom)["53034-5"]["valueCodeableConcept"]["coding"][0]["code"] == "LA6705-3"
    with pytest.raises(SmartcareError, match="does not carry"):
        to_fhir_observation({"contig": "q", "pos": 5, "ref": "C", "alts": ["T", "G"], "gt": [0, 1]},
                            alt_index=2)


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router, prefix="/api/genomics")
    return TestClient(app)


def test_api_observation_and_call(client, small_bam, sim_dir):
    r = client.post("/api/genomics/observation",
                    json={"record": {"contig": "q", "pos": 5, "ref": "C", "alts": ["T"], "gt": [0, 1]}})
    assert r.status_code == 200 and r.json()["resourceType"] == "Observation"
    r = client.post("/api/genomics/call", json={"ref": str(sim_dir / "ref.fa"), "bam": str(small_bam),
                                                "regions": "chr20_10100001_10600000:301-12000",
                                                "model": "classical"})
    assert r.status_code == 200
    calls = r.json()["calls"]
    assert calls and all(c["contig"] == "chr20_10100001_10600000" for c in calls)


def test_api_bad_input_is_problem_json(client, tmp_path, sim_dir):
    r = client.post("/api/genomics/call", json={"ref": str(sim_dir / "ref.fa"), "bam": str(tmp_path / "x.bam")})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "BAM file not found" in r.json()["detail"]
