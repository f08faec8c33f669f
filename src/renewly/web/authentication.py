"""Every route answers only to a live secret API key (`Authorization: Bearer rnw_sk_...`), but
the OpenAPI document and its docs page, which say nothing of any account. An unknown, revoked or
missing key is 401 problem+json, before routing: an unknown path without a key is 401 too, so
that a caller without a key learns nothing, not even which paths exist beyond the document. (A
key revoked by another process, `renewly apikeys revoke`, is refused within a second: a process
trusts a key it found live for that long, web/keys.py.)

An ASGI middleware rather than a dependency of each route, so that no route can be added
without it; the routes read the key it found with the `Caller` dependency (web/dependencies.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from renewly.ports import Ports
from renewly.web.keys import authenticate, recognised
from renewly.web.problems import problem_response
from renewly.web.threads import in_a_read_thread

OPENAPI_PATH = "/v1/openapi.json"
DOCS_PATH = "/docs"
PUBLIC_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH})
# The billing portal's pages (web/portal, docs/portal.md): people with a session cookie, not API
# keys; its own middleware (sessions, CSRF, security headers) guards them.
PORTAL_PREFIX = "/portal"
# The banner embed (web/embed.py): a page shown in the host product's dashboard by a signed
# token of a few minutes (POST /v1/banner_tokens), not a key; and its web component's script.
EMBED_PREFIX = "/embed"
# The support console (web/console, docs/console.md): staff with a session cookie, not API keys.
CONSOLE_PREFIX = "/console"
# The simulated gateway's card form (adapters/gateways/card_form.py): a page for people too.
GATEWAY_FORM_PREFIX = "/gateway/sim"
SCOPE_KEY = "renewly.api_key"  # where the key found is left for the routes


class Authentication:
    def __init__(self, app: ASGIApp, ports: Ports) -> None:
        self.app, self.ports = app, ports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or (scope["path"] in PUBLIC_PATHS and scope["method"] in ("GET", "HEAD"))
                or for_the_portal(scope)):
            await self.app(scope, receive, send)
            return
        secret = _bearer(scope)
        found = None
        if secret is not None:  # a key trusted a moment ago needs no lookup, nor a thread
            found = (recognised(self.ports, secret)
                     or await in_a_read_thread(self.ports, authenticate, self.ports, secret))
        if found is None:
            said = ("this API key is unknown or revoked" if secret is not None else
                    "an API key is required: Authorization: Bearer rnw_sk_... (renewly apikeys create)")
            await problem_response(401, "unauthorized", said, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send)
            return
        scope[SCOPE_KEY] = found
        await self.app(scope, receive, send)


def for_the_portal(scope: Scope) -> bool:
    """Pages for people (the portal, the console, the simulated gateway's card form): no key,
    version, idempotency."""
    path = scope["path"]
    return any(path == prefix or path.startswith(prefix + "/")
               for prefix in (PORTAL_PREFIX, EMBED_PREFIX, CONSOLE_PREFIX, GATEWAY_FORM_PREFIX))


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None
