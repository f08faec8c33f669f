"""Expected refusals, each with a stable machine-readable code.

The CLI prints `message` on one line and exits 2; the API (later) turns the same error into
problem+json with `code`. Services raise these before they write anything.
"""

from __future__ import annotations


class BillingError(Exception):
    """A request the billing rules refuse. Nothing was changed."""

    code: str = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(BillingError):
    code = "not_found"


class InvalidInput(BillingError):
    code = "invalid_input"


class NotAllowed(BillingError):
    code = "not_allowed"


class Conflict(BillingError):
    code = "conflict"
