"""Every refusal as application/problem+json (RFC 9457): `type`, `title`, `status`, `detail` and
`code`, the stable machine-readable code the command line refuses with (renewly.shared.errors).

Which status a refusal gets follows its class: NotFound 404, NotAllowed 403, Conflict 409, any
other BillingError (InvalidInput...) 400. A request the door refuses (a field missing, too long,
of the wrong type: the pydantic models of the routes) is 422 with each field in `errors`. What
the database cannot do now (unreachable, full, read-only) is 503; only a bug is a 500, and then
without its traceback. A detail never repeats what the request sent (a card number must never be
echoed): it names fields, never their values. The use cases' own messages may quote a value
refused (an unknown currency): a card number in one is withheld all the same (R5.4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from renewly.adapters.logs import get_logger
from renewly.batches.parking import is_infrastructure
from renewly.payments.rules.card_numbers import withhold_card_numbers
from renewly.shared.errors import BillingError, Conflict, NotAllowed, NotFound

MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="Where in the request: body.name, query.limit, path.account_id...")
    message: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457), with Renewly's stable `code`."""

    type: str = Field(description="urn:renewly:problem:CODE")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable and machine-readable: the command line's error codes (docs/api.md).")
    errors: list[FieldError] | None = Field(None, description="Each field the door refused (422).")


def problem_response(status: int, code: str, detail: str, *, title: str | None = None,
                     errors: list[FieldError] | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """The one way a problem is answered (routes, handlers and middleware alike)."""
    body = Problem(type=f"urn:renewly:problem:{code}", title=title or TITLES.get(status, "Refused"), status=status,
                   detail=withhold_card_numbers(detail), code=code, errors=errors)
    # A lone surrogate quoted from a request (a rule's message) is written as its JSON escape.
    content = json.dumps(body.model_dump(exclude_none=True), ensure_ascii=False).encode("utf-8", "backslashreplace")
    return Response(content, status_code=status, media_type=MEDIA_TYPE, headers=headers)


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request too large", 422: "Invalid request",
          500: "Internal error", 503: "Unavailable"}


def status_of(error: BillingError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, Conflict):
        return 409
    return 400


# What each documented status answers with, for the routes' `responses=` (the OpenAPI document
# then says which problems an operation may answer, and schemathesis holds the API to it).
def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                     "description": TITLES[status]} for status in statuses}


def install(app: FastAPI) -> None:
    """The exception handlers that make every refusal a problem."""

    async def billing_refusal(_request: Request, error: Exception) -> Response:
        assert isinstance(error, BillingError)
        return problem_response(status_of(error), error.code, error.message)

    async def invalid_request(_request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        # A key of the body becomes a field's name: a card number sent as one is withheld too.
        errors = [FieldError(field=withhold_card_numbers(".".join(str(part) for part in item.get("loc", ()))),
                             message=withhold_card_numbers(item.get("msg", ""))) for item in error.errors()]
        said = "; ".join(f"{each.field}: {each.message}" for each in errors[:5])
        return problem_response(422, "invalid_input", f"the request was refused: {said}", errors=errors)

    async def http_refusal(_request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "invalid_request")
        return problem_response(error.status_code, code, str(error.detail), headers=error.headers)

    async def unexpected(request: Request, error: Exception) -> Response:
        if is_infrastructure(error):
            log.error("the database cannot be used", path=request.url.path, error=type(error).__name__)
            return problem_response(503, "database_unavailable", "the database cannot be used now; try again later",
                                    headers={"Retry-After": "5"})
        if isinstance(error, OverflowError):  # a number SQLite cannot hold: the door's bounds should stop it first
            return problem_response(400, "number_too_large", "a number is larger than the database holds")
        log.exception("a request failed", path=request.url.path)
        return problem_response(500, "internal_error", "Renewly failed to answer this request; it is logged")

    app.add_exception_handler(BillingError, billing_refusal)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_refusal)
    app.add_exception_handler(Exception, unexpected)
