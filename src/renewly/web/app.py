"""`create_app(ports)`: the FastAPI application of the `/v1` API, for `renewly serve` and the
tests. It is given ready `Ports` (bootstrap.py builds them) and never opens anything itself.

The billing portal's pages for people are mounted at /portal (web/portal, docs/portal.md), and
the support console's for the operator's staff at /console (web/console, docs/console.md), outside
the API's keys, versions and idempotency; so is the simulated gateway's card form, at /gateway/sim
(adapters/gateways/card_form.py), the page where a card number goes instead of Renewly.

Each resource is a module of `renewly.web.routes` with an `APIRouter` named `router`; ROUTERS
lists them, and every one is mounted under `/v1` with the same documented security, version
header and problems (docs/api.md, "How to add a resource").
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRouter

from renewly.adapters.gateways.card_form import PREFIX as CARD_FORM_PREFIX
from renewly.adapters.gateways.card_form import create_card_form
from renewly.ports import Ports
from renewly.web import problems
from renewly.web.authentication import (
    CONSOLE_PREFIX,
    DOCS_PATH,
    EMBED_PREFIX,
    OPENAPI_PATH,
    PORTAL_PREFIX,
    Authentication,
)
from renewly.web.console.app import create_console
from renewly.web.dependencies import known_query_parameters_only
from renewly.web.embed.app import create_embed
from renewly.web.idempotency import KEY_LENGTH, Idempotency
from renewly.web.portal.app import create_portal
from renewly.web.problems import FieldError, Problem
from renewly.web.routes import (
    accounts,
    banner_tokens,
    billing_contacts,
    dunning,
    events,
    invoices,
    payment_methods,
    plans,
    portal_sessions,
    subscriptions,
    support,
    test_clock,
    webhook_endpoints,
)
from renewly.web.versions import CURRENT, HEADER, Versions

ROUTERS: tuple[APIRouter, ...] = (accounts.router, plans.router, subscriptions.router, invoices.router,
                                  payment_methods.router, billing_contacts.router, events.router, dunning.router,
                                  support.router, webhook_endpoints.router, test_clock.router, portal_sessions.router,
                                  banner_tokens.router)
# The problems every operation may answer: no key (401), a field refused at the door (422), an
# Idempotency-Key or a version refused (400), a key reused (409), the database down (503).
COMMON_PROBLEMS = problems.problems(400, 401, 409, 422, 503)


# What the middlewares enforce (web/authentication.py, web/versions.py), said of every operation
# by `openapi()` rather than by a dependency of each route, which FastAPI ran on every request.
SECURITY_SCHEME = {"HTTPBearer": {"type": "http", "scheme": "bearer",
                                  "description": "A secret API key: `renewly apikeys create NAME`."}}
VERSION_PARAMETER = {
    "name": HEADER, "in": "header", "required": False,
    "description": "The API version asked for (default: the current one).",
    "schema": {"type": "string", "const": CURRENT, "default": CURRENT, "title": HEADER,
               "description": "The API version asked for (default: the current one)."}}
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Sent again with the same request, its first answer is replayed (24 hours); a UUID.",
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_LENGTH, "pattern": "^[ -~]+$"}}


def create_app(ports: Ports) -> FastAPI:
    from importlib.metadata import version
    app = FastAPI(title="Renewly API", version=version("renewly"), openapi_url=OPENAPI_PATH, docs_url=DOCS_PATH,
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                  generate_unique_id_function=lambda route: route.name,  # operationId: the function's name
                  description="Subscription billing, invoicing and dunning: the host product's API (docs/api.md).")
    app.state.ports = ports
    for router in ROUTERS:
        app.include_router(router, prefix="/v1", responses=COMMON_PROBLEMS,
                           dependencies=[Depends(known_query_parameters_only)])
    problems.install(app)
    # The billing portal's pages (docs/portal.md): sessions, not keys; outside the API's document.
    app.mount(PORTAL_PREFIX, create_portal(ports))
    # The support console for the operator's staff (docs/console.md): staff sessions, not keys.
    app.mount(CONSOLE_PREFIX, create_console(ports))
    # The banner embed for the host product's dashboard (docs/portal.md): a signed token, no key.
    app.mount(EMBED_PREFIX, create_embed(ports))
    # The simulated gateway's own card form (its page, not Renewly's: the number goes there only).
    app.mount(CARD_FORM_PREFIX, create_card_form(lambda: ports.gateway))
    # Added last runs first: versions, then authentication, then idempotency, then the routes.
    app.add_middleware(Idempotency, ports=ports)
    app.add_middleware(Authentication, ports=ports)
    app.add_middleware(Versions)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the Problem schema the error responses name, the bearer key and
    the version header of every operation, and the Idempotency-Key header every POST takes
    (web/idempotency.py reads it before any route)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, FieldError):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.pop("$defs", None)
            schemas[model.__name__] = schema
        document["components"]["securitySchemes"] = SECURITY_SCHEME
        for path, operations in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                operation.setdefault("parameters", []).append(VERSION_PARAMETER)
                operation["security"] = [{"HTTPBearer": []}]
            if "post" in operations:
                operations["post"]["parameters"].append(IDEMPOTENCY_KEY_PARAMETER)
        app.openapi_schema = document
    return app.openapi_schema
