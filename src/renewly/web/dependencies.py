"""What a route is given, as typed dependencies that show in its signature:
`def create_plan(app: AppPorts, caller: Caller, body: PlanIn)`.

A dependency that does no I/O is `async def`: FastAPI calls a plain `def` one in the thread
pool, a hop to a worker thread and back for each, on every request (docs/performance.md, "API").
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError

from renewly.payments.rules.card_numbers import CardNumberRefused, holds_card_number_anywhere
from renewly.ports import Ports
from renewly.web.authentication import SCOPE_KEY
from renewly.web.keys import ApiKey


async def ports(request: Request) -> Ports:
    return request.app.state.ports


async def caller(request: Request) -> ApiKey:
    """The key the request came with, found by the Authentication middleware."""
    return request.scope[SCOPE_KEY]


AppPorts = Annotated[Ports, Depends(ports)]
Caller = Annotated[ApiKey, Depends(caller)]

async def known_query_parameters_only(request: Request) -> None:
    """A query parameter the operation does not take is refused (422), as a body's unknown field
    is: a filter misspelt (`?acount_id=7`) must not answer as if there were none, listing every
    account's invoices. (async: no I/O, so no hop to the thread pool for it.)"""
    unknown = set(request.query_params) - _query_parameters(request.scope["route"].dependant)
    if unknown:
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", name),
                                       "msg": "Extra inputs are not permitted"} for name in sorted(unknown)])


def _query_parameters(dependant: Dependant) -> set[str]:
    """The names of the query parameters an operation takes, its dependencies' included (a walk
    of a handful of nodes: cheaper than any cache of it)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return names


async def refuse_card_numbers(request: Request) -> None:
    """R5.4 at the door of a route that takes card tokens (`dependencies=[Depends(...)]`): a body
    with a card number anywhere in it, a field or a key, is refused (400 card_number_refused)
    before any field is read, so that no use case, gateway or log sees it; the problem does not
    repeat it. Runs before the body's own checks: a card number among unknown fields is refused
    as such too."""
    body = await request.body()  # read once by FastAPI already: kept by the request
    if not body:
        return
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (the body's checks refuse it next): its text
        document = body.decode("utf-8", "replace")
    if holds_card_number_anywhere(document):
        raise CardNumberRefused()
