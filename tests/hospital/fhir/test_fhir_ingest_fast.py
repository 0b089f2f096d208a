"""The fast ingest paths keep the store's behaviour: buffered creations, bulk rows, the validation memo."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir import validation
from smartcare.hospital.fhir.db import history, idx_reference, idx_token, resources
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.store import FhirStore

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}]},
    "subject": {"reference": "Patient/fast-1"},
    "valueQuantity": {"value": 180.5, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
}


def _outcome(resource: dict) -> dict | None:
    try:
        validation.validate(resource)
    except FhirError as err:
        return err.outcome()
    return None


def test_validation_memo_keeps_error_reports():
    bad = copy.deepcopy(OBS)
    bad["valueQuantity"]["value"] = "tall"  # same code/subject as a valid resource, broken quantity
    bad["subject"] = {"reference": "Patient/fast-1", "bogus": 1}
    validation._MEMO.clear()
    cold = _outcome(bad)
    assert _outcome(OBS) is None and validation._MEMO  # valid elements are remembered
    warm = _outcome(bad)
    assert cold is not None and warm == cold
    exprs = [e for issue in warm["issue"] for e in issue.get("expression", [])]
    assert "Observation.valueQuantity.value" in exprs and "Observation.subject.bogus" in exprs


def test_validation_memo_is_off_outside_validate():
    from fhir.resources.R4B.coding import Coding
    from fhir_core.types import FhirBase

    with pytest.raises(FhirError):  # an invalid resource takes the pydantic path, which installs the memo
        validation.validate({**OBS, "status": 3})
    assert getattr(FhirBase.fhir_model_validator.__func__, "smartcare_memo", False)
    size = len(validation._MEMO)
    Coding.model_validate({"system": "urn:x", "code": "outside"})
    assert len(validation._MEMO) == size


@pytest.mark.parametrize("order", ["post-then-put", "put-then-post"])
def test_buffered_creations_keep_write_order_and_rows(engine, order):
    pat = {"resourceType": "Patient", "id": f"fast-{order}", "name": [{"family": "Fast"}]}
    with Session(engine) as session:
        store = FhirStore(session)
        if order == "post-then-put":
            a = store.create(copy.deepcopy(OBS)).stored
            b = store.update("Patient", pat["id"], pat).stored
        else:
            b = store.update("Patient", pat["id"], pat).stored
            a = store.create(copy.deepcopy(OBS)).stored
        assert store.read("Observation", a.res_id).version == 1  # a buffered creation is readable
        store.commit()
        pks = dict(
            session.execute(
                select(resources.c.res_id, resources.c.pk).where(resources.c.res_id.in_([a.res_id, b.res_id]))
            ).all()
        )
        assert (pks[a.res_id] < pks[b.res_id]) == (order == "post-then-put")
        hist = session.execute(select(history.c.content).where(history.c.res_id == a.res_id)).scalar_one()
        assert hist == a.content and hist["meta"]["versionId"] == "1"
        codes = session.execute(
            select(idx_token.c.code).where(idx_token.c.res_pk == pks[a.res_id], idx_token.c.param == "code")
        ).scalars()
        assert list(codes) == ["8302-2"]
        subject = session.execute(
            select(idx_reference.c.target_id).where(
                idx_reference.c.res_pk == pks[a.res_id], idx_reference.c.param == "subject"
            )
        ).scalar_one()
        assert subject == "fast-1"


def test_buffered_creations_roll_back(engine):
    with Session(engine) as session:
        store = FhirStore(session)
        created = store.create(copy.deepcopy(OBS)).stored
        store.rollback()
        found = session.execute(select(resources.c.pk).where(resources.c.res_id == created.res_id)).first()
        assert found is None


def test_contained_resource_without_known_type_is_400():
    for contained in ({"resourceType": "Bogus", "id": "x"}, {"id": "x"}, "text"):
        with pytest.raises(FhirError, match="Contained resource 0 has an unknown or missing resourceType") as info:
            validation.validate({"resourceType": "Patient", "contained": [contained]})
        assert info.value.status == 400
        assert info.value.expression == ["Patient.contained[0].resourceType"]
