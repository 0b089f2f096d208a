"""The R4 element table that drives XML <-> JSON conversion (:mod:`smartcare.hospital.fhir.xml`).

XML needs facts that JSON carries in its syntax: which elements repeat (JSON arrays), which are
primitives (``value`` attributes) and of which JSON kind (boolean, integer, decimal, string,
xhtml), and the order in which elements must appear. ``xml_elements_r4.json`` holds them per type:
``{"Patient": {"identifier": "Identifier*", "active": "boolean", "contact": "Patient.contact*"}}``
(``*`` marks an array; element order is the R4 definition order; backbone elements are named by
their first path; ``Resource`` marks a nested resource, ``xhtml`` the narrative ``div``).

Provenance (see ``_provenance`` in the JSON): the FHIR R4 (4.0.1) StructureDefinitions are CC0.
Types and cardinalities come from the models of ``fhirclient`` 4.x, which are generated from those
R4 4.0.1 definitions (the shared data has no StructureDefinitions); element order from the R4B
models of ``fhir.resources`` (``elements_sequence``), because fhirclient sorts elements by name.
For the R4-only types (no R4B model) the inherited elements come first in R4B's order and the
type's own elements follow in fhirclient's (alphabetical) order: no local source carries their R4
order. XML written for those types may therefore not follow the R4 schema order; reading accepts
any order.
Regenerate with ``python -m smartcare.hospital.fhir.xmldefs``; it prints the R4/R4B differences.

The R4/R4B gap, measured by :func:`r4b_differences`: of the 662 R4 types (resources, datatypes,
backbone elements) 81 have no R4B model (the 18 resource types R4B removed, ``MedicinalProduct*``,
``Substance{NucleicAcid,Polymer,Protein,ReferenceInformation,SourceMaterial,Specification}``,
``EffectEvidenceSynthesis``, ``RiskEvidenceSynthesis``, their backbones, and the reshaped
``Evidence``/``EvidenceVariable`` backbones); 29 R4 elements are missing from R4B models
(``Evidence``/``EvidenceVariable`` elements and a few ``value[x]``/``example[x]`` choices); on every
element both have, the cardinality agrees. Hence the table is built from the R4 models, not R4B.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import lru_cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("xml_elements_r4.json")
PRIMITIVES = frozenset({"boolean", "integer", "decimal", "string", "xhtml"})


@lru_cache(maxsize=1)
def element_table() -> tuple[dict[str, dict[str, tuple[str, bool]]], frozenset[str]]:
    """``({type: {element: (type or primitive kind, is_array)}}, resource type names)``."""
    data = json.loads(TABLE.read_text())
    types = {
        name: {el: (code.rstrip("*"), code.endswith("*")) for el, code in elements.items()}
        for name, elements in data["types"].items()
    }
    return types, frozenset(data["resources"])


# -- derivation (developer tool; needs fhirclient and fhir.resources, both in the hospital extra) ----
def _r4b_order(cls: type) -> list[str] | None:
    module = cls.__module__.rsplit(".", 1)[-1]
    try:
        r4b = getattr(importlib.import_module(f"fhir.resources.R4B.{module}"), cls.__name__, None)
    except ImportError:
        return None
    return list(r4b.elements_sequence()) if r4b is not None else None


def derive() -> dict[str, Any]:
    """Build the table from fhirclient's R4 models (types, cardinality) and R4B's element order."""
    import fhirclient.models as fc_models
    from fhirclient.models.fhirabstractbase import FHIRAbstractBase
    from fhirclient.models.resource import Resource

    names: dict[type, str] = {}
    types: dict[str, dict[str, str]] = {}
    resources: list[str] = []

    def kind(owner: str, el: str, t: type, path: str) -> str:
        if owner == "Narrative" and el == "div":
            return "xhtml"
        if t is bool:
            return "boolean"
        if t is int:
            return "integer"
        if t is float:
            return "decimal"
        if not (isinstance(t, type) and issubclass(t, FHIRAbstractBase)):
            return "string"  # str, FHIRDate, FHIRDateTime, FHIRInstant, FHIRTime
        if t is Resource:
            return "Resource"
        return visit(t, path)

    def visit(cls: type, path: str) -> str:
        if cls in names:
            return names[cls]
        module = cls.__module__.rsplit(".", 1)[-1]
        name = {"FHIRReference": "Reference"}.get(cls.__name__, cls.__name__)
        if name.lower() != module and cls.__name__ != "FHIRReference":
            name = path  # a backbone element, named by its (first) path
        names[cls] = name
        props = cls.elementProperties(cls.__new__(cls))
        elements = {p[1]: kind(name, p[1], p[2], f"{name}.{p[1]}") + ("*" if p[3] else "") for p in props}
        # R4B's order; for R4-only types, that of the nearest base class R4B has (inherited elements first)
        order = next(o for o in (_r4b_order(base) for base in cls.__mro__[:-1]) if o is not None)
        types[name] = {el: elements[el] for el in order if el in elements}
        types[name].update({el: code for el, code in elements.items() if el not in types[name]})
        if issubclass(cls, Resource) and name == cls.__name__:
            resources.append(name)
        return name

    for mod in pkgutil.iter_modules(fc_models.__path__):
        if mod.name.endswith("_tests") or mod.name.startswith("fhir"):
            continue
        module = importlib.import_module(f"fhirclient.models.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, FHIRAbstractBase) and obj.__module__ == module.__name__:
                if obj.__name__.lower() == mod.name:
                    visit(obj, obj.__name__)
    return {
        "_provenance": (
            "Derived from the HL7 FHIR R4 (4.0.1) StructureDefinitions (CC0-1.0) as generated into the "
            "fhirclient 4.x models (types, cardinality); element order from the fhir.resources R4B models "
            "where R4B has the element, otherwise fhirclient's order. Regenerate: "
            "python -m smartcare.hospital.fhir.xmldefs"
        ),
        "resources": sorted(resources),
        "types": dict(sorted(types.items())),
    }


def r4b_differences() -> list[str]:
    """Every R4 type, element or cardinality that the R4B models lack or change (the R4/R4B gap)."""
    import fhirclient.models as fc_models
    from fhirclient.models.fhirabstractbase import FHIRAbstractBase

    out = []
    for mod in pkgutil.iter_modules(fc_models.__path__):
        if mod.name.endswith("_tests") or mod.name.startswith("fhir"):
            continue
        module = importlib.import_module(f"fhirclient.models.{mod.name}")
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, FHIRAbstractBase) and cls.__module__ == module.__name__):
                continue
            try:
                r4b = getattr(importlib.import_module(f"fhir.resources.R4B.{mod.name}"), cls.__name__)
            except (ImportError, AttributeError):
                out.append(f"{cls.__name__}: no R4B model")
                continue
            fields = {f.alias or n: f for n, f in r4b.model_fields.items()}
            for p in cls.elementProperties(cls.__new__(cls)):
                f = fields.get(p[1])
                if f is None:
                    out.append(f"{cls.__name__}.{p[1]}: not in R4B")
                elif p[3] != ("List" in str(f.annotation)):
                    out.append(f"{cls.__name__}.{p[1]}: array in {'R4' if p[3] else 'R4B'} only")
    return out


if __name__ == "__main__":
    derived = derive()
    TABLE.write_text(json.dumps(derived, indent=0, separators=(",", ":")) + "\n")
    diffs = r4b_differences()
    print(f"{len(derived['types'])} types, {len(derived['resources'])} resources -> {TABLE}")
    print(f"{len(diffs)} differences from R4B:", *diffs, sep="\n  ")
