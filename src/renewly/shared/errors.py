"""Expected refusals, each with a stable machine-readable code.

The CLI prints `message` on one line and exits 2; the API (later) turns the same error into
problem+json with `code`. Services raise these before they write anything.

The portal and the console show a refusal in the reader's language instead, chosen by `code`
(web/refusals.py); `values` are the specifics its sentence may name there (a field, a limit, an
address), as plain values: the English `message` is never shown in a translated page.
"""

from __future__ import annotations

from collections.abc import Mapping


class BillingError(Exception):
    """A request the billing rules refuse. Nothing was changed."""

    code: str = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, values: Mapping[str, str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.values: Mapping[str, str | int] = values or {}
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
