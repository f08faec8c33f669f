"""The gettext catalogues: what people read (invoice labels, e-mails, banners), in their language.

The translations are `renewly/locale/<locale>/LC_MESSAGES/messages.po`, kept in the repository
and edited with Babel's tools (`make catalogues`: `pybabel extract`, `update`; babel.cfg,
docs/texts.md). They are compiled here, once per process and locale, with Babel's own compiler:
no `.mo` file has to be built or shipped, and a `.po` edited in place is what runs.

An operator's folder (the `templates_dir` setting) may hold its own
`locale/<locale>/LC_MESSAGES/messages.po`: its translations win over the shipped ones, message
by message; what it does not translate comes from the shipped catalogue.
"""

from __future__ import annotations

import re
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.shared.errors import InvalidInput

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"


class CatalogueRefused(InvalidInput):
    """An operator's catalogue that cannot be read: refused at start with its file and line."""

    code = "invalid_catalogue"


def catalogue_path(locale: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str, templates_dir: Path | None = None) -> Translations:
    """The compiled catalogue of a supported locale (en, fr); with an operator's folder, its
    `locale/<locale>/LC_MESSAGES/messages.po` merged over the shipped one."""
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"no catalogue for locale {locale!r}: expected one of {', '.join(SUPPORTED_LOCALES)}")
    found = _compiled(catalogue_path(locale), locale)
    if templates_dir is not None:
        override = catalogue_path(locale, templates_dir / "locale")
        if override.is_file():
            # A fresh shipped catalogue: merge() changes the one it is called on.
            found = _compiled(catalogue_path(locale), locale)
            found.merge(_compiled(override, locale))
    return found


def _compiled(path: Path, locale: str) -> Translations:
    try:
        with path.open("rb") as po_file:
            catalog = read_po(po_file, locale=locale, domain=DOMAIN, abort_invalid=True)
    except OSError as error:
        raise CatalogueRefused(f"{path}: cannot read the catalogue ({error.strerror})") from None
    except PoFileError as error:
        # Babel counts lines from 0, and names its own line number again at the end.
        reason = re.sub(r" on \d+$", "", str(error))
        raise CatalogueRefused(f"{path}:{error.lineno + 1}: {reason}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise CatalogueRefused(f"{path}: not a gettext catalogue ({error})") from None
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
