"""The simulated gateway's hosted card form: the page a real gateway serves from its own site
(as Stripe Checkout in setup mode does), so that a card number never reaches Renewly (R5.4).

`renewly serve` mounts it at `/gateway/sim` (web/app.py), beside the portal but none of it: no
portal session, no Renewly template, no Renewly log line. The portal sends the owner's browser
to `/gateway/sim/card-form?return_to=PATH&state=STATE&locale=LANG`; the form posts the number
here, `SimulatedGateway.tokenize` keeps brand, last 4 digits and expiry in the simulator's own
ledger, and the browser is sent back to `return_to` with `state` and the card's token only.

`return_to` must be a path of this site (no other host: not an open redirect); `state` is passed
back untouched (the portal checks it). A number refused (not a card number) shows the form again
with the refusal, never the number. Nothing here is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from renewly.config.catalogues import translations
from renewly.shared.errors import InvalidInput

PREFIX = "/gateway/sim"
FORM_PATH = "/card-form"
LOCALES = ("en", "fr")
HEADERS = {
    "content-security-policy": ("default-src 'none'; form-action 'self'; base-uri 'none'; "
                                "frame-ancestors 'none'"),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
LARGEST_FORM = 4096


def form_url(return_to: str, state: str, locale: str) -> str:
    """Where to send a browser to enter a card: the gateway's page, on this site."""
    return f"{PREFIX}{FORM_PATH}?" + urlencode({"return_to": return_to, "state": state, "locale": locale})


def safe_return(path: str) -> bool:
    """A path of this site only: never another host (`//host`, a scheme, a backslash)."""
    return path.startswith("/") and not path.startswith("//") and "\\" not in path and ":" not in path.split("?")[0]


@cache
def _environment(locale: str) -> Environment:
    found = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                        autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                        extensions=["jinja2.ext.i18n"])
    found.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return found


def _page(fields: dict[str, str], *, error: str = "", status: int = 200) -> HTMLResponse:
    locale = fields["locale"] if fields.get("locale") in LOCALES else "en"
    html = _environment(locale).get_template("card_form.html").render(
        locale=locale, action=PREFIX + FORM_PATH, return_to=fields.get("return_to", ""),
        state=fields.get("state", ""), error=error)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def create_card_form(gateway: Callable[[], Any]) -> Starlette:
    """The form's site; `gateway()` is the simulated gateway (asked at the first card)."""

    def refused(status: int) -> Response:
        return Response(status_code=status, headers=HEADERS)

    async def simulated() -> bool:  # a real gateway serves its own form on its own site: none here
        return getattr(await anyio.to_thread.run_sync(gateway), "name", "") == "simulated"

    async def show(request: Request) -> Response:
        if not await simulated():
            return refused(404)
        asked = dict(request.query_params)
        if not safe_return(asked.get("return_to", "")) or not asked.get("state"):
            return refused(400)
        return _page(asked)

    async def submit(request: Request) -> Response:
        if not await simulated():
            return refused(404)
        if int(request.headers.get("content-length") or 0) > LARGEST_FORM:
            return refused(413)
        form = await request.form(max_fields=10)
        sent = {name: str(form.get(name, "")) for name in ("number", "exp_month", "exp_year", "return_to", "state",
                                                          "locale")}
        if not safe_return(sent["return_to"]) or not sent["state"]:
            return refused(400)
        month, year = sent["exp_month"].strip(), sent["exp_year"].strip()
        if not (month.isdigit() and 1 <= int(month) <= 12 and year.isdigit() and len(year) == 4):
            return _page(sent, error="expiry", status=400)
        try:
            token = await anyio.to_thread.run_sync(gateway().tokenize, sent["number"], int(month), int(year))
        except InvalidInput:
            return _page(sent, error="number", status=400)
        back = sent["return_to"] + ("&" if "?" in sent["return_to"] else "?")
        return RedirectResponse(back + urlencode({"state": sent["state"], "token": token}), status_code=303,
                                headers=HEADERS)

    return Starlette(routes=[Route(FORM_PATH, show, methods=["GET"]), Route(FORM_PATH, submit, methods=["POST"])])
