"""The server's CapabilityStatement, generated from what the code really supports (FHIR R4 §2.1.0)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from smartcare.hospital.fhir.searchparams import INDEXED_TYPES, params_for, resource_types
from smartcare.hospital.fhir.values import instant, now

STARTED = instant(now())

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
SYSTEM_INTERACTIONS = ["transaction", "batch", "search-system", "history-system"]
SEARCH_RESULT_PARAMS = ["_sort", "_count", "_include", "_revinclude", "_summary", "_elements", "_total"]
DOCS = "http://hl7.org/fhir/SearchParameter/"


@lru_cache(maxsize=4)
def capability_statement(base: str, software_version: str) -> dict[str, Any]:
    """CapabilityStatement for every resource type with the search parameters actually indexed."""
    rest_resources = []
    for rtype in resource_types():
        params = [
            {
                "name": code,
                "definition": f"{DOCS}{rtype}-{code}"
                if not code.startswith("_")
                else f"{DOCS}Resource{code.replace('_', '-')}",
                "type": p.type,
            }
            for code, p in sorted(params_for(rtype).items())
            if p.type in INDEXED_TYPES
        ]
        refs = sorted(f"{rtype}:{code}" for code, p in params_for(rtype).items() if p.type == "reference")
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": ["*", *refs],
            "searchRevInclude": ["*"],
            "searchParam": params,
        }
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        rest_resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STARTED,  # this server's own statement: dated when the process started
        "publisher": "smartcare",
        "kind": "instance",
        "software": {"name": "smartcare FHIR server", "version": software_version},
        "implementation": {"description": "smartcare.hospital.fhir", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": rest_resources,
                "interaction": [{"code": c} for c in SYSTEM_INTERACTIONS],
                "searchParam": [
                    {"name": n, "type": "special" if n != "_count" else "number"} for n in SEARCH_RESULT_PARAMS
                ],
            }
        ],
    }
