"""Alembic migrations of the FHIR store (run by :func:`smartcare.hospital.fhir.db.init_db`)."""
