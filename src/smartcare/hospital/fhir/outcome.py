"""OperationOutcome errors for the FHIR REST API (FHIR R4 §2.21.0, http.html#errors)."""

from __future__ import annotations

from typing import Any

from smartcare.core.errors import SmartcareError

# HTTP status -> OperationOutcome.issue.code (FHIR R4 valueset issue-type).
_CODE_FOR_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
    422: "processing",
    500: "exception",
}


class FhirError(SmartcareError):
    """A failed FHIR interaction; rendered as an OperationOutcome with ``status``.

    ``expression`` holds FHIRPath-style element paths (e.g. ``Patient.name[0].given``) when the
    problem concerns a specific element.
    """

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        issues: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or _CODE_FOR_STATUS.get(status, "processing")
        self.expression = expression or []
        self.extra_issues = issues or []

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome resource describing this error."""
        issue: dict[str, Any] = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return {"resourceType": "OperationOutcome", "issue": [issue, *self.extra_issues]}


def information(message: str) -> dict[str, Any]:
    """An informational OperationOutcome (used for ``Prefer: return=OperationOutcome``)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": message}],
    }
