"""CDS Hooks 2.0 services: discovery, patient-view score cards, order-select / order-sign PDDI cards.

HL7 CDS Hooks 2.0 (cds-hooks.hl7.org/2.0): a service receives ``hook``, ``hookInstance``, ``context``,
optional ``prefetch`` and ``fhirServer`` / ``fhirAuthorization``. Prefetch templates in discovery are
honoured; a template the client did not fill is fetched from ``fhirServer`` with the bearer token, paged
through ``next`` links, and a service that cannot get the data it needs answers 412 (see :mod:`prefetch`).
Order-select evaluates only the ``selections`` among ``draftOrders``; order-sign evaluates every draft.
Coordination between the two follows the PDDI-CDS IG extension ``pddi-configuration-items``:
``cache-for-order-sign-filtering`` (order-select) remembers the cards shown, and
``filter-out-repeated-alerts`` (order-sign) drops cards already shown for that patient.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds import interactions, pddi
from smartcare.hospital.cds.calculators import calculate
from smartcare.hospital.cds.fhir_inputs import MED_TYPES, extract_inputs, flatten, parse_date, ref
from smartcare.hospital.cds.hooks_models import CONTEXTS, CDSRequest
from smartcare.hospital.cds.prefetch import PAGE_SIZE, Prefetch, gather, observations_template

_PAGE = f"_count={PAGE_SIZE}"
MED_PREFETCH = {
    "item1": "Patient?_id={{context.patientId}}",
    "item2": f"MedicationRequest?patient={{{{context.patientId}}}}&{_PAGE}",
    "item3": f"MedicationAdministration?patient={{{{context.patientId}}}}&{_PAGE}",
    "item4": f"MedicationDispense?patient={{{{context.patientId}}}}&{_PAGE}",
    "item5": f"MedicationStatement?patient={{{{context.patientId}}}}&{_PAGE}",
    "item6": f"Condition?patient={{{{context.patientId}}}}&{_PAGE}",
    "item7": f"Observation?patient={{{{context.patientId}}}}&_sort=-date&{_PAGE}",
}
SERVICES: list[dict[str, Any]] = [
    {
        "id": "smartcare-scores",
        "hook": "patient-view",
        "title": "Clinical scores",
        "description": "NEWS2, qSOFA, CURB-65, CHA2DS2-VASc and HAS-BLED from the record, each with points, "
        "missing inputs and citation.",
        "prefetch": {
            "patient": "Patient/{{context.patientId}}",
            "observations": observations_template(),
            "conditions": f"Condition?patient={{{{context.patientId}}}}&{_PAGE}",
            "medications": f"MedicationRequest?patient={{{{context.patientId}}}}&status=active&{_PAGE}",
        },
    },
    {
        "id": "pddi-order-select",
        "hook": "order-select",
        "title": "Drug interactions (order-select)",
        "description": "Warfarin + NSAIDs and digoxin + cyclosporine (HL7 PDDI-CDS IG) and ONC high-priority "
        "interactions for the selected draft orders.",
        "prefetch": MED_PREFETCH,
    },
    {
        "id": "pddi-order-sign",
        "hook": "order-sign",
        "title": "Drug interactions (order-sign)",
        "description": "PDDI checks for all draft orders at signing; can filter cards already shown at order-select.",
        "prefetch": MED_PREFETCH,
    },
    {
        "id": "pddi-medication-prescribe",
        "hook": "medication-prescribe",
        "title": "Drug interactions (legacy)",
        "description": "PDDI checks for the CDS Hooks 1.0 medication-prescribe hook used by the PDDI-CDS IG "
        "scenario requests.",
        "prefetch": MED_PREFETCH,
    },
]
# Prefetch keys without which a service cannot answer (CDS Hooks 2.0: 412 when they cannot be obtained);
# the others are fetched when missing, and reported in the response when they cannot be.
REQUIRED = {
    "smartcare-scores": ("patient", "observations"),
    "pddi-order-select": ("item2", "item6"),
    "pddi-order-sign": ("item2", "item6"),
    "pddi-medication-prescribe": ("item2", "item6"),
}
INDICATOR = {"high": "critical", "moderate": "warning", "low": "info"}
# Card indicator per (score, band): acute-deterioration bands are critical, other raised bands warnings.
CRITICAL_BANDS = {("NEWS2", "high"), ("CURB-65", "severe"), ("qSOFA", "positive")}
INFO_BANDS = {"low", "negative", "low-moderate"}


class HookRequestError(SmartcareError):
    """A malformed CDS Hooks request (answered with HTTP 400 and the reason)."""

    status = 400
    title = "Malformed CDS Hooks request"


class UnknownServiceError(SmartcareError):
    status = 404
    title = "Unknown CDS service"


class CoordinationCache:
    """Card keys shown at order-select, per patient, kept ``ttl_s`` seconds (thread-safe, in memory)."""

    def __init__(self, ttl_s: float = 3600.0):
        self.ttl_s = ttl_s
        self._data: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def remember(self, patient: str, keys: list[str]) -> None:
        with self._lock:
            self._data.setdefault(patient, {}).update({k: time.time() for k in keys})

    def seen(self, patient: str) -> set[str]:
        now = time.time()
        with self._lock:
            return {k for k, t in self._data.get(patient, {}).items() if now - t <= self.ttl_s}


def discovery() -> dict:
    return {"services": [dict(s) for s in SERVICES]}


def service(service_id: str) -> dict:
    for s in SERVICES:
        if s["id"] == service_id:
            return s
    raise UnknownServiceError(f"no CDS service {service_id!r}; see GET /cds-services")


def parse_request(service_id: str, body: Any) -> CDSRequest:
    """Validate a hook request for ``service_id``. Raises HookRequestError with the reason."""
    svc = service(service_id)
    if not isinstance(body, Mapping):
        raise HookRequestError("request body must be a JSON object")
    try:
        req = CDSRequest.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        raise HookRequestError(f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None
    if req.hook != svc["hook"]:
        raise HookRequestError(f"service {service_id!r} answers hook {svc['hook']!r}, not {req.hook!r}")
    try:
        CONTEXTS[req.hook].model_validate(req.context)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(["context", *map(str, first["loc"])])
        raise HookRequestError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    if req.fhirAuthorization is not None and not req.fhirServer:
        raise HookRequestError("fhirAuthorization given without fhirServer")
    if req.hook == "order-select":  # a malformed request is a 400 before any data is fetched
        drafts = {ref(d) for d in flatten(req.context.get("draftOrders"))}
        unknown = set(req.context.get("selections") or []) - drafts
        if unknown:
            raise HookRequestError(f"selections {sorted(unknown)} are not in context.draftOrders")
    return req


def render(template: str, context: Mapping[str, Any]) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(1).strip()
        value = context.get(key.removeprefix("context.")) if key.startswith("context.") else None
        if key == "userPractitionerId":
            value = str(context.get("userId", "")).split("/")[-1]
        return str(value or "").split("/")[-1]

    return re.sub(r"\{\{([^}]+)\}\}", sub, template)


def fetch_prefetch(req: CDSRequest, service_id: str, client: httpx.Client | None = None) -> Prefetch:
    """The prefetch of ``service_id`` for ``req``: what the client sent, completed (and paged) from
    ``fhirServer`` with the bearer token (:mod:`prefetch`). Raises PrefetchUnavailableError (412)."""
    token = req.fhirAuthorization.access_token if req.fhirAuthorization is not None else None
    return gather(
        req.prefetch,
        service(service_id).get("prefetch") or {},
        REQUIRED.get(service_id, ()),
        req.fhirServer,
        token,
        lambda template: render(template, req.context),
        client,
    )


def _gather(req: CDSRequest, prefetch: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    """(draft orders, every other resource) from context and prefetch, in any of the shapes met in the wild."""
    ctx = dict(req.context)
    drafts = flatten(ctx.pop("draftOrders", None)) + flatten(ctx.pop("medications", None))
    others = flatten(list(prefetch.values()))
    for key, value in ctx.items():  # legacy requests put prefetch bundles inside context
        if isinstance(value, Mapping | list) and key not in ("selections",):
            bare = isinstance(value, Mapping) and not ({"resourceType", "entry", "resource"} & set(value))
            others.extend(flatten(list(value.values()) if bare else value))
    draft_ids = {ref(d) for d in drafts if d.get("id")}
    others = [o for o in others if not (o.get("id") and ref(o) in draft_ids)]
    return drafts, others


def _config(req: CDSRequest) -> dict:
    ext = (req.model_extra or {}).get("extension") or {}
    return dict(ext.get("pddi-configuration-items") or {}) if isinstance(ext, Mapping) else {}


def order_cards(req: CDSRequest, prefetch: Mapping[str, Any], cache: CoordinationCache) -> list[dict]:
    drafts, others = _gather(req, prefetch)
    if req.hook == "order-select":
        chosen = set(req.context.get("selections") or [])
        evaluated = [d for d in drafts if ref(d) in chosen]
        unknown = chosen - {ref(d) for d in drafts}
        if unknown:
            raise HookRequestError(f"selections {sorted(unknown)} are not in context.draftOrders")
        other_meds = [d for d in drafts if d not in evaluated]
    else:
        evaluated, other_meds = drafts, []
    other_meds += [o for o in others if o.get("resourceType") in MED_TYPES]
    dates = [parse_date(d.get("authoredOn")) for d in drafts if d.get("authoredOn")]
    patient = next((o for o in others if o.get("resourceType") == "Patient"), None)
    data = pddi.OrderData(
        evaluated,
        other_meds,
        conditions=[o for o in others if o.get("resourceType") == "Condition"],
        observations=[o for o in others if o.get("resourceType") == "Observation"],
        patient=patient,
        reference_date=max((d for d in dates if d), default=None),
    )
    cards: list[dict] = []
    for rule in pddi.RULES.values():
        cards.extend(rule(data))
    cards.extend(_onc_cards(data))
    pid = str(req.context.get("patientId", ""))
    config = _config(req)
    if req.hook == "order-select" and config.get("cache-for-order-sign-filtering"):
        cache.remember(pid, [c["key"] for c in cards])
    if req.hook == "order-sign" and config.get("filter-out-repeated-alerts"):
        seen = cache.seen(pid)
        cards = [c for c in cards if c["key"] not in seen]
    if config.get("alert-non-serious") is False:
        cards = [c for c in cards if c["indicator"] != "info"]
    return cards


def _onc_cards(data: pddi.OrderData) -> list[dict]:
    """ONC-list interactions involving an evaluated order, except pairs the PDDI rules already cover."""
    covered = {frozenset(("digoxin", "cyclosporine"))}
    new_refs = {id(m) for m in data.evaluated}
    cards = []
    try:
        found = interactions.check_medications(data.all_meds)
    except SmartcareError:
        return []
    for hit in found:
        pair = frozenset((hit.ingredient_a, hit.ingredient_b))
        if pair in covered or "warfarin" in pair and pair & set(pddi.rxnorm.vocabulary()["classes"]["nsaid"]):
            continue
        involved = [m for m in data.all_meds if ref(m) in hit.references and id(m) in new_refs]
        if not involved:
            continue
        pid = pddi.patient_ref(data)
        suggestions = [
            {"label": f"Cancel {pddi.display(involved[0])}", "actions": [pddi.cancel_action(involved[0])]},
            pddi.issue_suggestion(hit, pid),
        ]
        cards.append(
            pddi.make_card(
                f"{hit.ingredient_a} + {hit.ingredient_b}: ONC {hit.source.split(':')[1]} interaction",
                INDICATOR[hit.severity],
                hit.detail,
                f"onc|{'|'.join(sorted(pair))}",
                suggestions,
                [],
            )
        )
    return cards


def score_cards(
    req: CDSRequest, prefetch: Mapping[str, Any], unavailable: Mapping[str, str] | None = None
) -> list[dict]:
    resources = flatten(list(prefetch.values()))
    gaps = [f"{k} ({why})" for k, why in (unavailable or {}).items()]
    inputs = extract_inputs(resources)
    cards = []
    for name in ("NEWS2", "qSOFA", "CURB-65", "CHA2DS2-VASc", "HAS-BLED"):
        result = calculate(name, inputs)
        if all(c.missing for c in result.criteria) or len(result.missing) > len(result.criteria) / 2:
            continue
        lines = [f"- {c.label}: {c.points} ({c.value})" for c in result.criteria]
        if result.missing:
            lines.append(f"\nMissing: {', '.join(result.missing)}. Assumed: {'; '.join(result.assumptions)}")
        if gaps:
            lines.append(f"\nRecord data that could not be obtained: {'; '.join(gaps)}")
        cards.append(
            {
                "summary": f"{result.score} {result.total} ({result.band})"[:140],
                "indicator": "critical"
                if (result.score, result.band) in CRITICAL_BANDS
                else ("info" if result.band in INFO_BANDS else "warning"),
                "detail": f"{result.interpretation}\n\n" + "\n".join(lines) + f"\n\nSource: {result.citation}",
                "source": {"label": "smartcare clinical scores", "topic": {"code": result.score}},
                "extension": {"smartcare-score": result.to_dict()},
            }
        )
    return cards


def handle(
    service_id: str, body: Any, *, client: httpx.Client | None = None, cache: CoordinationCache | None = None
) -> dict:
    """Answer one hook call: ``{"cards": [...]}`` (+ ``extension`` reporting fetched / unavailable prefetch).

    Raises HookRequestError (400) / UnknownServiceError (404) / PrefetchUnavailableError (412)."""
    req = parse_request(service_id, body)
    svc = service(service_id)
    if _legacy_prefetch(req):  # CDS Hooks 1.0 scenario requests: the data travel inside context
        got = Prefetch(data=dict(req.prefetch or {}))
    else:
        got = fetch_prefetch(req, service_id, client)
    if svc["hook"] == "patient-view":
        cards = score_cards(req, got.data, got.unavailable)
    else:
        cards = order_cards(req, got.data, cache if cache is not None else CoordinationCache())
    for c in cards:
        c.pop("key", None)
    out: dict[str, Any] = {"cards": cards}
    if got.note():
        out["extension"] = got.note()
    return out


def _legacy_prefetch(req: CDSRequest) -> bool:
    """Legacy (CDS Hooks 1.0 / IG scenario) requests carry prefetch inside ``context``."""
    return "prefetch" in req.context
