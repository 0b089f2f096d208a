"""All 48 Synthea transaction Bundles load; counts match index.json and every reference resolves."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import dangling_references, resources
from smartcare.hospital.fhir.loader import load_paths


@pytest.mark.slow
def test_all_synthea_bundles(engine, synthea_dir, client):
    index = json.loads((synthea_dir / "index.json").read_text())
    expected: Counter[str] = Counter()
    for entry in index:
        expected.update(entry["resource_counts"])
    assert len(index) == 50  # 48 patients + hospital and practitioner Bundles
    with Session(engine) as session:
        counts = load_paths(session, [synthea_dir / "bundles"])
        assert counts == expected
        stored = dict(session.execute(select(resources.c.res_type, func.count()).group_by(resources.c.res_type)).all())
        assert stored == dict(expected)
        dangling = dangling_references(session)
        assert dangling == 0
    patients = client.get("/fhir/Patient?_count=100&_elements=id").json()
    assert patients["total"] == expected["Patient"] == 48
    pid = patients["entry"][0]["resource"]["id"]
    everything = client.get(f"/fhir/Patient/{pid}/$everything?_count=1000").json()
    assert everything["total"] > 10
    print(f"synthea: {sum(expected.values())} resources, {dict(expected)}")
