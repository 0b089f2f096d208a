"""Pydantic models of the CDS Hooks 2.0 wire format (HL7 CDS Hooks 2.0 STU, cds-hooks.hl7.org/2.0).

Requests are validated strictly where the spec says REQUIRED (``hook``, ``hookInstance``, ``context``);
unknown fields are kept (``extra="allow"``) because hooks and extensions add their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FhirAuthorization(_Open):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int | None = None
    scope: str
    subject: str | None = None
    patient: str | None = None


class CDSService(_Open):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class DiscoveryResponse(_Open):
    services: list[CDSService]


class CDSRequest(_Open):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class Source(_Open):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: dict[str, Any] | None = None


class Action(_Open):
    type: Literal["create", "update", "delete"]
    description: str | None = None
    resource: dict[str, Any] | None = None
    resourceId: str | list[str] | None = None


class Suggestion(_Open):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Open):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class OverrideReason(_Open):
    code: str | None = None
    system: str | None = None
    display: str | None = None


class Card(_Open):
    uuid: str | None = None
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical", "success", "hard-stop"]
    # REQUIRED by the spec; optional here because the CDS Hooks docs' own examples omit it.
    source: Source | None = None
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = None
    links: list[Link] | None = None


class CDSResponse(_Open):
    cards: list[Card]
    systemActions: list[Action] | None = None


class AcceptedSuggestion(_Open):
    id: str


class FeedbackItem(_Open):
    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: dict[str, Any] | None = None
    outcomeTimestamp: str


class Feedback(_Open):
    feedback: list[FeedbackItem]


class OrderContext(_Open):
    """Context of order-sign (and the base of order-select / medication-prescribe).

    ``draftOrders`` is REQUIRED by CDS Hooks 2.0 and must be a FHIR Bundle; the older ``medications`` shape
    (CDS Hooks 1.0 examples) is accepted instead of it. ``userId`` stays optional because the PDDI IG's
    own requests omit it.
    """

    userId: str | None = None
    patientId: str
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any] | None = None
    medications: Any = None

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle of draft orders (resourceType 'Bundle')")
        return value

    @model_validator(mode="after")
    def _orders_given(self) -> OrderContext:
        if self.draftOrders is None and self.medications is None:
            raise ValueError("draftOrders is required (a FHIR Bundle of the draft orders)")
        return self


class OrderSelectContext(OrderContext):
    """order-select: ``selections`` (REQUIRED) names the draft orders just chosen."""

    selections: list[str] = Field(min_length=1)


class MedicationPrescribeContext(OrderContext):
    """Legacy CDS Hooks 1.0 medication-prescribe: the orders come as ``medications``."""

    @model_validator(mode="after")
    def _orders_given(self) -> MedicationPrescribeContext:
        if self.medications is None and self.draftOrders is None:
            raise ValueError("medications is required (the medication orders being prescribed)")
        return self


class PatientViewContext(_Open):
    userId: str | None = None
    patientId: str
    encounterId: str | None = None


CONTEXTS: dict[str, type[BaseModel]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderContext,
    "medication-prescribe": MedicationPrescribeContext,
}
