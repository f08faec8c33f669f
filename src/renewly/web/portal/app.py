"""`create_portal(ports)`: the billing portal's pages, mounted at /portal by web/app.py.

Its own FastAPI application, outside the /v1 API's document and keys: people sign in with a
one-time link (renewly.portal.sessions) and hold a session cookie. Around every page: the
security headers, then CSRF (web/portal/security.py); every refusal is a page in the reader's
language, never JSON.

Its CSRF tokens are signed with the `secret_key` setting (the test clock signs with its known
key, as the removal links do); without one on the system clock, every page says the portal is
not configured (503).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from renewly.accounts.removal_links import TEST_CLOCK_KEY
from renewly.adapters.logs import get_logger
from renewly.batches.parking import is_infrastructure
from renewly.portal.sessions import session_locale
from renewly.ports import Ports
from renewly.shared.errors import BillingError
from renewly.web.authentication import PORTAL_PREFIX
from renewly.web.portal import routes
from renewly.web.portal.rendering import browser_locale, page
from renewly.web.portal.security import FormTokenAsHeader, PortalCSRF, SecurityHeaders
from renewly.web.problems import status_of
from renewly.web.refusals import refusal_in_words

STATIC = __file__.rsplit("/", 1)[0] + "/static"
log = get_logger(__name__)


def portal_secret(ports: Ports) -> str:
    key = ports.settings.secret_key.get_secret_value()
    if ports.settings.clock == "test":
        return key or TEST_CLOCK_KEY
    return "" if key == TEST_CLOCK_KEY else key


def reader_locale(request: Request) -> str:
    """The language of a refusal page: the signed-in member's account's (R12.1), else the
    browser's (before sign-in, or when the database cannot tell: a 503 page is written all the
    same)."""
    secret = request.cookies.get(routes.SESSION_COOKIE)
    ports = getattr(request.app.state, "ports", None) if "app" in request.scope else None
    if secret and ports is not None:
        try:
            found = session_locale(ports, secret)
        except SQLAlchemyError:
            found = None
        if found is not None:
            return found
    return browser_locale(request)


def problem_page(request: Request, status: int, kind: str, detail: str = "") -> Response:
    return page(request, "problem.html", locale=reader_locale(request), status=status, kind=kind, detail=detail,
                base=PORTAL_PREFIX)


def create_portal(ports: Ports) -> FastAPI:
    portal = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    portal.state.ports = ports
    secret = portal_secret(ports)
    if not secret:
        async def unconfigured(scope: Scope, receive: Receive, send: Send) -> None:
            await problem_page(Request(scope), 503, "unconfigured")(scope, receive, send)

        portal.mount("/", unconfigured)
        portal.add_middleware(SecurityHeaders)
        return portal
    portal.state.secret = secret  # also signs the card form's state (routes.py)
    portal.include_router(routes.router)
    portal.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_problem_pages(portal)

    async def csrf_refused(scope: Scope, receive: Receive, send: Send) -> None:
        await problem_page(Request(scope), 403, "csrf")(scope, receive, send)

    async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
        await problem_page(Request(scope), 413, "too_large")(scope, receive, send)

    # Added last runs first: the headers on every answer, then the form's token, then CSRF.
    portal.add_middleware(PortalCSRF, secret=secret, https_only=ports.settings.portal.https_only,
                          refused=csrf_refused)
    portal.add_middleware(FormTokenAsHeader, too_large=too_large)
    portal.add_middleware(SecurityHeaders)
    return portal


def _install_problem_pages(portal: FastAPI) -> None:
    async def sign_in_required(request: Request, _error: Exception) -> Response:
        return problem_page(request, 401, "sign_in_required")

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, routes.Refused)
        who = error.who
        return page(request, f"{error.kind}.html", locale=who.locale, status=403, who=who, base=PORTAL_PREFIX)

    portal.add_exception_handler(routes.SignInRequired, sign_in_required)
    portal.add_exception_handler(routes.Refused, refused)
    install_refusal_pages(portal, problem_page, what="a portal page", locale_of=reader_locale)


def install_refusal_pages(pages: FastAPI, problem_page: Callable[..., Response], *, what: str,
                          locale_of: Callable[[Request], str] = browser_locale) -> None:
    """The refusals every application of pages for people answers alike (the portal, the
    console): a billing rule's, a malformed request's, an unknown route's, the database's; each a
    page in the reader's language (`locale_of`, the one `problem_page` writes in) through the
    application's own `problem_page`, never JSON; a rule's refusal in that language's words too
    (web/refusals.py), never its English message."""
    async def billing_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, BillingError)
        status = status_of(error)
        return problem_page(request, status, {404: "not_found", 403: "refused"}.get(status, "invalid"),
                            refusal_in_words(error, locale_of(request)))

    async def invalid_request(request: Request, _error: Exception) -> Response:
        return problem_page(request, 400, "invalid")

    async def http_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        kind = {404: "not_found", 405: "not_found"}.get(error.status_code, "invalid")
        return problem_page(request, error.status_code, kind)

    async def unexpected(request: Request, error: Exception) -> Response:
        if is_infrastructure(error):
            log.error("the database cannot be used", path=request.url.path, error=type(error).__name__)
            return problem_page(request, 503, "unavailable")
        log.exception(f"{what} failed", path=request.url.path)
        return problem_page(request, 500, "internal")

    pages.add_exception_handler(BillingError, billing_refusal)
    pages.add_exception_handler(RequestValidationError, invalid_request)
    pages.add_exception_handler(HTTPException, http_refusal)
    pages.add_exception_handler(Exception, unexpected)
