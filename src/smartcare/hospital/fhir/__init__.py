"""FHIR R4 (4.0.1) server: generic versioned resource store, search from the official
SearchParameter definitions, batch/transaction Bundles and a FastAPI router mounted at ``/fhir``.

Modules: ``db`` (tables, engines, migrations), ``store`` (CRUD + history), ``indexer``/``search``/
``searchset`` (search), ``bundle`` (batch/transaction), ``loader`` (files), ``api`` (REST routes).
"""
