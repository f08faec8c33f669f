"""The portal's pages: Jinja2 templates (web/portal/templates), their sentences from the gettext
catalogues (src/renewly/locale, docs/texts.md), in the account's language (R12.1); before
sign-in, in the browser's (Accept-Language), English by default. Every value is escaped."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.billing.rules.invoices import format_day
from renewly.config.catalogues import translations
from renewly.shared.money import Money
from renewly.web.portal.security import CSRF_FIELD, SCOPE_TOKEN

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTMX_VERSION = "2.0.11"  # static/htmx.min.js, from the npm package htmx.org (static/README.md)


@cache
def environment(locale: str, templates: Path = TEMPLATES) -> Environment:
    """The templates of `templates` (the portal's; the console's: web/console) in `locale`."""
    found = Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(default=True),
                        undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                        lstrip_blocks=True, auto_reload=False)
    # A sentence written over several lines is one message (babel.cfg: trimmed = true).
    found.policies["ext.i18n.trimmed"] = True
    found.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    found.filters["money"] = lambda amount, currency: Money(amount, currency).format(locale)
    found.filters["day"] = lambda day: format_day(day, locale) if isinstance(day, date) else ""
    return found


def browser_locale(request: Request) -> str:
    """The first supported language of Accept-Language, by the order the browser gives them."""
    for part in request.headers.get("accept-language", "").split(","):
        language = part.split(";")[0].strip().lower()[:2]
        if language in SUPPORTED_LOCALES:
            return language
    return "en"


def page(request: Request, name: str, *, locale: str, status: int = 200, templates: Path = TEMPLATES,
         **values: Any) -> HTMLResponse:
    html = environment(locale, templates).get_template(name).render(
        locale=locale, csrf_field=CSRF_FIELD, csrf_token=request.scope.get(SCOPE_TOKEN, ""),
        htmx_version=HTMX_VERSION, **values)
    return HTMLResponse(html, status_code=status)
