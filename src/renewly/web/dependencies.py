"""What a route is given, as typed dependencies that show in its signature:
`def create_plan(app: AppPorts, caller: Caller, body: PlanIn)`."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from renewly.payments.rules.card_numbers import CardNumberRefused, holds_card_number_anywhere
from renewly.ports import Ports
from renewly.web import versions
from renewly.web.authentication import SCOPE_KEY
from renewly.web.keys import ApiKey


def ports(request: Request) -> Ports:
    return request.app.state.ports


def caller(request: Request) -> ApiKey:
    """The key the request came with, found by the Authentication middleware."""
    return request.scope[SCOPE_KEY]


AppPorts = Annotated[Ports, Depends(ports)]
Caller = Annotated[ApiKey, Depends(caller)]

# Enforced by the middleware (web/authentication.py, web/versions.py); declared here so that the
# OpenAPI document says every operation wants a bearer key and may name a version.
_bearer = HTTPBearer(auto_error=False, description="A secret API key: `renewly apikeys create NAME`.")


def documented(_key: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
               _version: Annotated[Literal[versions.CURRENT] | None,  # type: ignore[valid-type]
                                   Header(alias=versions.HEADER, description="The API version asked for "
                                                                             "(default: the current one).")] = None,
               ) -> None:
    return None


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
