"""The Patient compartment for ``Patient/$everything`` (FHIR R4 compartmentdefinition-patient).

Provenance: ``compartment_patient.json`` is derived from ``CompartmentDefinition-patient.json`` of
``hl7.fhir.r4.examples@4.0.1`` (CC0-1.0): for each resource type, the reference search parameters
that put a resource in a patient's compartment.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import idx_reference, resources


@lru_cache(maxsize=1)
def compartment_params() -> dict[str, list[str]]:
    """Resource type -> parameters linking it to the Patient compartment."""
    return json.loads(Path(__file__).with_name("compartment_patient.json").read_text())["resources"]


def patient_compartment_query(patient_id: str) -> Select:
    """``SELECT pk`` of the Patient and every live resource in its compartment, Patient first."""
    links = or_(
        *(
            and_(idx_reference.c.res_type == rtype, idx_reference.c.param.in_(params))
            for rtype, params in compartment_params().items()
        )
    )
    members = select(idx_reference.c.res_pk).where(
        idx_reference.c.target_type == "Patient", idx_reference.c.target_id == patient_id, links
    )
    is_patient = and_(resources.c.res_type == "Patient", resources.c.res_id == patient_id)
    return (
        select(resources.c.pk)
        .where(resources.c.deleted == false(), or_(is_patient, resources.c.pk.in_(members)))
        .order_by((resources.c.res_type != "Patient"), resources.c.res_type, resources.c.pk)
    )


def in_patient_compartment(session: Session, rtype: str, rid: str, patient_id: str) -> bool:
    """Whether live ``rtype/rid`` is the Patient ``patient_id`` or in its compartment."""
    q = patient_compartment_query(patient_id).order_by(None).subquery()
    row = session.execute(
        select(resources.c.pk).where(
            resources.c.res_type == rtype, resources.c.res_id == rid, resources.c.pk.in_(select(q))
        )
    ).first()
    return row is not None


def references_patient(resource: Any, patient_id: str) -> bool:
    """Whether a resource (to be written) is that Patient or references it anywhere."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Patient" and resource.get("id") == patient_id:
        return True
    target = f"Patient/{patient_id}"

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and (ref == target or ref.endswith("/" + target)):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(resource)
