"""Error types shared by every domain.

``SmartcareError`` marks bad input: the message names the problem and is shown to the user as is
(CLI: printed, exit code 2; HTTP: RFC 9457 problem+json with status 422 unless ``status`` says otherwise).
"""

from __future__ import annotations


class SmartcareError(ValueError):
    """Bad input or an unusable resource; ``str(err)`` is the user-facing explanation."""

    status: int = 422
    title: str = "Invalid input"


class DatasetMissingError(SmartcareError, FileNotFoundError):
    """A shared dataset is not where ``SMARTCARE_DATA`` says it should be."""

    status = 404
    title = "Dataset not found"


class ModelNotFoundError(SmartcareError, LookupError):
    """No shipped model or local checkpoint by that name or path."""

    status = 404
    title = "Model not found"


# What an HTTP client is told when the database cannot be reached (503); the driver's own message is
# never shown, since it may quote SQL parameters.
DATABASE_UNAVAILABLE = "the database is unreachable or unavailable; check SMARTCARE_DATABASE_URL and retry"
