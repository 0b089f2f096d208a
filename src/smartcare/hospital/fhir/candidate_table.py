"""The ``nlp_candidate`` table: the NLP-to-FHIR review queue, stored beside the FHIR resources.

One row per candidate resource (Condition / MedicationStatement) extracted from a note: its status
(``pending`` until a reviewer ``accepted`` or ``rejected`` it), the candidate resource and its FHIR
Provenance as JSON, the note it came from with the mention's character offsets, when it was queued and
decided, and by whom. Created by migration ``0004``; this module only mirrors it on
:data:`~smartcare.hospital.fhir.db.METADATA` for queries and ``reset_db``.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table

from smartcare.hospital.fhir.db import METADATA, JSONType

CANDIDATE_STATUSES = ("pending", "accepted", "rejected")

nlp_candidate = Table(
    "nlp_candidate",
    METADATA,
    Column("id", String(64), primary_key=True),  # the candidate resource's id (a uuid)
    Column("status", String(16), nullable=False),  # one of CANDIDATE_STATUSES
    Column("res_type", String(64), nullable=False),  # Condition | MedicationStatement
    Column("patient", String(255)),  # the resource's subject reference
    Column("note", String(255), nullable=False),  # reference of the note it was extracted from
    Column("char_start", Integer),
    Column("char_end", Integer),
    Column("resource", JSONType, nullable=False),
    Column("provenance", JSONType, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("decided", DateTime(timezone=True)),
    Column("reviewer", String(255)),
    Column("written", JSONType),  # accepted: the references written to the FHIR store
    Index("ix_nlp_candidate_status", "status", "created"),
    Index("ix_nlp_candidate_patient", "patient"),
)
