"""`create_console(ports)`: the support console's pages, mounted at /console by web/app.py.

Its own FastAPI application, as the portal's (web/portal/app.py), with the same guards: the
security headers, CSRF on every form (its cookie for /console only), forms of 64 KiB at most;
every refusal a page in the browser's language. Staff sign in with an e-mail and a password
(renewly.console.sessions); without a session, every page sends the browser to the sign-in form.
Without `secret_key` on the system clock, every page says the console is not configured (503).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from renewly.adapters.logs import get_logger
from renewly.ports import Ports
from renewly.web.authentication import CONSOLE_PREFIX
from renewly.web.console import routes
from renewly.web.console.routes import problem_page
from renewly.web.portal.app import install_refusal_pages, portal_secret
from renewly.web.portal.security import FormTokenAsHeader, PortalCSRF, SecurityHeaders

STATIC = __file__.rsplit("/", 1)[0] + "/static"
log = get_logger(__name__)


def create_console(ports: Ports) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    console.state.ports = ports
    secret = portal_secret(ports)
    if not secret:
        async def unconfigured(scope: Scope, receive: Receive, send: Send) -> None:
            await problem_page(Request(scope), 503, "unconfigured")(scope, receive, send)

        console.mount("/", unconfigured)
        console.add_middleware(SecurityHeaders)
        return console
    console.include_router(routes.router)
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_problem_pages(console)

    async def csrf_refused(scope: Scope, receive: Receive, send: Send) -> None:
        await problem_page(Request(scope), 403, "csrf")(scope, receive, send)

    async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
        await problem_page(Request(scope), 413, "too_large")(scope, receive, send)

    # Added last runs first: the headers on every answer, then the form's token, then CSRF.
    console.add_middleware(PortalCSRF, secret=secret, https_only=ports.settings.portal.https_only,
                           refused=csrf_refused, cookie_path=CONSOLE_PREFIX, one_click=False)
    console.add_middleware(FormTokenAsHeader, too_large=too_large)
    console.add_middleware(SecurityHeaders)
    return console


def _install_problem_pages(console: FastAPI) -> None:
    async def sign_in_required(_request: Request, _error: Exception) -> Response:
        return RedirectResponse(CONSOLE_PREFIX + "/sign-in", status_code=303)

    async def read_only(request: Request, _error: Exception) -> Response:
        return problem_page(request, 403, "read_only")

    console.add_exception_handler(routes.SignInRequired, sign_in_required)
    console.add_exception_handler(routes.ReadOnly, read_only)
    install_refusal_pages(console, problem_page, what="a console page")
