"""`create_embed(ports)`: the banner embed for the host product's dashboard, mounted at /embed
by web/app.py (docs/portal.md, "The banner embed").

- `GET /embed/banner?token=...`: a page for an iframe showing one member their banner of today
  (R8.3, R8.4, R9) in the account's language, or nothing visible when they have none. The token
  (POST /v1/banner_tokens, renewly/portal/banner_tokens.py) is the only credential: no session,
  no key, and no cookie is ever set. An altered, foreign or expired token, or a member no longer
  of the account, gets a small page saying so (404, 403), in the browser's language.
- `GET /embed/renewly-banner.js`: the `<renewly-banner token="...">` web component, which makes
  that iframe; and `embed.css`, the page's style. Files, cached an hour.

Every answer has its own Content-Security-Policy: no script at all, the page's style from this
origin, and framing only by the origins of `embed.allowed_origins` (none when it is empty).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

from renewly.adapters.logs import get_logger
from renewly.batches.parking import is_infrastructure
from renewly.dunning.reactivation import banner_for_member
from renewly.dunning.rules.banners import banner_in_words, banner_severity
from renewly.portal.banner_tokens import bearer_of
from renewly.ports import Ports
from renewly.shared.errors import BillingError
from renewly.web.portal.rendering import browser_locale, page
from renewly.web.portal.security import SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"renewly-banner.js": "text/javascript; charset=utf-8", "embed.css": "text/css; charset=utf-8"}
FILES_CACHE = "public, max-age=3600"  # the script and the style: no secret in them
log = get_logger(__name__)


def content_security_policy(origins: list[str]) -> str:
    ancestors = " ".join(origins) if origins else "'none'"
    return ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {ancestors}")


def embed_headers(origins: list[str]) -> dict[str, str]:
    """The embed's headers on every answer; no X-Frame-Options, which knows no list of origins
    (the CSP's frame-ancestors says who may frame it)."""
    return {"content-security-policy": content_security_policy(origins), "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "cache-control": "no-store"}


def refusal(request: Request, status: int, kind: str) -> Response:
    return page(request, "embed_problem.html", locale=browser_locale(request), status=status, kind=kind)


def create_embed(ports: Ports) -> FastAPI:
    embed = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)

    @embed.get("/banner")
    def banner(request: Request, token: str = "") -> Response:
        """The member's banner of today, or nothing visible; a refusal page for a bad token."""
        try:
            bearer = bearer_of(ports, token)
            seen = banner_for_member(ports, bearer.account_id, bearer.member)
        except BillingError as refused:
            kind = {"banner_token_expired": "banner_token_expired", "embed_unconfigured": "unconfigured"}.get(
                refused.code, "banner_token_invalid")
            return refusal(request, {"banner_token_expired": 403, "unconfigured": 503}.get(kind, 404), kind)
        severity = banner_severity(seen["banner"])
        shown = None if severity is None else {"code": seen["banner"], "severity": severity.value,
                                               "name": banner_in_words(seen["banner"], seen["locale"]),
                                               "text": seen["text"]}
        return page(request, "embed_banner.html", locale=seen["locale"], banner=shown)

    for name, media_type in FILES.items():
        embed.add_api_route(f"/{name}", _file(name, media_type), methods=["GET"])
    _install_refusals(embed)
    embed.add_middleware(SecurityHeaders, headers=embed_headers(ports.settings.embed.allowed_origins),
                         no_cookies=True)
    return embed


def _file(name: str, media_type: str):
    def serve() -> Response:
        return FileResponse(STATIC / name, media_type=media_type,
                            headers={"cache-control": FILES_CACHE, "cross-origin-resource-policy": "cross-origin"})
    serve.__name__ = "embed_" + name.replace("-", "_").replace(".", "_")
    return serve


def _install_refusals(embed: FastAPI) -> None:
    async def invalid(request: Request, _error: Exception) -> Response:
        return refusal(request, 400, "invalid")

    async def http_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return refusal(request, error.status_code, "not_found" if error.status_code in (404, 405) else "invalid")

    async def unexpected(request: Request, error: Exception) -> Response:
        if is_infrastructure(error):
            log.error("the database cannot be used", path=request.url.path, error=type(error).__name__)
            return refusal(request, 503, "unavailable")
        log.exception("the banner embed failed", path=request.url.path)
        return refusal(request, 500, "internal")

    embed.add_exception_handler(RequestValidationError, invalid)
    embed.add_exception_handler(HTTPException, http_refusal)
    embed.add_exception_handler(Exception, unexpected)
