"""The gettext catalogues: what people read (invoice labels today, e-mails next), in their language.

The translations are `renewly/locale/<locale>/LC_MESSAGES/messages.po`, kept in the repository
and edited with Babel's tools (`pybabel extract`, `update`, `compile`; babel.cfg, docs/invoices.md).
They are compiled here, once per process and locale, with Babel's own compiler: no `.mo` file has
to be built or shipped, and a `.po` edited in place is what runs.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from renewly.accounts.rules.members import SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> Translations:
    """The compiled catalogue of a supported locale (en, fr)."""
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"no catalogue for locale {locale!r}: expected one of {', '.join(SUPPORTED_LOCALES)}")
    with catalogue_path(locale).open("rb") as po_file:
        catalog = read_po(po_file, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
