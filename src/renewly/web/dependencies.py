"""What a route is given, as typed dependencies that show in its signature:
`def create_plan(app: AppPorts, caller: Caller, body: PlanIn)`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
