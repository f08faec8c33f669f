"""The portal's guards around every page: CSRF on every form, the security headers.

CSRF is starlette-csrf's double-submit cookie: a signed random token in a cookie, which every
unsafe request (POST...) must send back, or it is refused (403) before any route runs. Two
things are added to it for pages that work without JavaScript:

- the token is read from the form's hidden `csrf_token` field as well as from its header
  (`FormTokenAsHeader` copies the field into the header; htmx sends the same form fields);
- the token a page needs is known while the page is rendered, also on a browser's first visit
  (starlette-csrf makes it only when the answer leaves): `PortalCSRF` makes it first, keeps it in
  the request's scope for the templates, and sets that one in the cookie. Its cookie is HttpOnly
  (no script needs it: the pages carry it), SameSite=Lax, Secure over HTTPS (`cookie_is_secure`).

One POST is taken without a token: RFC 8058's one-click removal, which a mail client sends to a
billing e-mail's `List-Unsubscribe` address without any page or cookie. On that path only, a
request without a token is let through marked `ONE_CLICK`, and its route then accepts nothing
but the body `List-Unsubscribe=One-Click`; the signed token in its address is what authorizes it
(whoever holds the link can remove that contact, by design). A token sent there is checked as anywhere.

The headers: a Content-Security-Policy without inline scripts or styles (htmx is a file of the
portal's own, /portal/static/htmx.min.js), no framing at all (frame-ancestors 'none'), no
Referer sent (a sign-in link's token stays in the address it was opened at), nothing cached.
"""

from __future__ import annotations

import http.cookies
from urllib.parse import parse_qs

from itsdangerous import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette_csrf import CSRFMiddleware

CSRF_COOKIE = "renewly_csrf"
CSRF_HEADER = "x-csrftoken"
CSRF_FIELD = "csrf_token"
SCOPE_TOKEN = "renewly.csrf_token"  # the token the page being rendered puts in its forms
ONE_CLICK = "renewly.one_click"  # a POST without a token to a removal link's address (RFC 8058)
ONE_CLICK_PATH = "/billing-contacts/remove/"
LARGEST_FORM = 64 * 1024  # the portal's forms are an address at most

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


def cookie_is_secure(scope: Scope, https_only: bool) -> bool:
    """A cookie is Secure when its request came over HTTPS (uvicorn takes X-Forwarded-Proto from
    a proxy it trusts), or always with the `portal.https_only` setting."""
    return https_only or scope.get("scheme") == "https"


class SecurityHeaders:
    """`headers` on every answer where a route did not set its own (the portal's by default);
    `no_cookies`: a Set-Cookie is removed, whoever tried (the banner embed sets none)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None, no_cookies: bool = False) -> None:
        self.app, self.headers, self.no_cookies = app, HEADERS if headers is None else headers, no_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
                if self.no_cookies:
                    del headers["set-cookie"]
            await send(message)

        await self.app(scope, receive, with_headers)


class PortalCSRF(CSRFMiddleware):
    """`cookie_path`: the pages the token is for (/portal; the support console's, /console);
    `one_click`: whether RFC 8058's POST without a token is let through (the portal's only)."""

    def __init__(self, app: ASGIApp, secret: str, *, https_only: bool, refused: ASGIApp,
                 cookie_path: str = "/portal", one_click: bool = True) -> None:
        super().__init__(app, secret, cookie_name=CSRF_COOKIE, cookie_path=cookie_path, cookie_httponly=True,
                         cookie_samesite="lax", header_name=CSRF_HEADER)
        self.https_only, self.refused, self.one_click = https_only, refused, one_click

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            held = Request(scope).cookies.get(self.cookie_name)
            # A cookie this server did not sign (altered, or from another key) is replaced.
            scope[SCOPE_TOKEN] = held if held and self._intact(held) else self._generate_csrf_token()
            if (self.one_click and scope["method"] == "POST" and ONE_CLICK_PATH in scope["path"]
                    and self.header_name not in MutableHeaders(scope=scope)):
                scope[ONE_CLICK] = True
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def send(self, message: Message, send: Send, scope: Scope) -> None:
        if message["type"] == "http.response.start" and Request(scope).cookies.get(self.cookie_name) != scope[
                SCOPE_TOKEN]:
            cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            cookie[self.cookie_name] = scope[SCOPE_TOKEN]
            cookie[self.cookie_name]["path"] = self.cookie_path
            cookie[self.cookie_name]["secure"] = cookie_is_secure(scope, self.https_only)
            cookie[self.cookie_name]["httponly"] = True
            cookie[self.cookie_name]["samesite"] = self.cookie_samesite
            MutableHeaders(scope=message).append("set-cookie", cookie.output(header="").strip())
        await send(message)

    def _intact(self, token: str) -> bool:
        try:
            self.serializer.loads(token)
        except BadSignature:
            return False
        return True

    def _get_error_response(self, request: Request) -> Response:
        # The portal's page for people (an ASGI app, as a Response is), not plain text.
        return self.refused  # type: ignore[return-value]


class FormTokenAsHeader:
    """A form's `csrf_token` field, copied into the header starlette-csrf reads; the body is read
    here (at most LARGEST_FORM bytes, else 413) and given again, whole, to the route."""

    def __init__(self, app: ASGIApp, too_large: ASGIApp) -> None:
        self.app, self.too_large = app, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "TRACE"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > LARGEST_FORM:
                await self.too_large(scope, receive, send)
                return
        headers = MutableHeaders(scope=scope)
        kind = headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded" and CSRF_HEADER not in headers:
            try:
                sent = parse_qs(body.decode("latin-1"), max_num_fields=50).get(CSRF_FIELD)
            except ValueError:  # more fields than any form of the portal: no token read, refused
                sent = None
            if sent:
                headers.append(CSRF_HEADER, sent[0])
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
