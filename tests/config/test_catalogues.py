"""The gettext catalogues (src/renewly/locale): complete in every language, and up to date with
the sources, so that a label added to a template without its translation fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.config.catalogues import LOCALE_DIR, catalogue_path, translations

ROOT = Path(__file__).resolve().parents[2]


def extracted_ids() -> set[str]:
    """What `pybabel extract -F babel.cfg` finds in the sources today."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {message[2] if isinstance(message[2], str) else message[2][0]
            for message in extract_from_dir(str(ROOT), method_map, options_map)}


def ids_of(path: Path, locale: str | None = None):
    with path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def test_the_template_catalogue_holds_what_the_sources_ask_for():
    # A plural message is known by its singular, as extracted_ids names it.
    template = {message.id if isinstance(message.id, str) else message.id[0]
                for message in ids_of(LOCALE_DIR / "messages.pot") if message.id}
    assert "Invoice %(number)s" in template
    assert template == extracted_ids(), "run pybabel extract and update (docs/invoices.md)"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_is_translated_with_the_same_placeholders_in_every_language(locale):
    catalog = ids_of(catalogue_path(locale), locale)
    template = {message.id for message in ids_of(LOCALE_DIR / "messages.pot") if message.id}
    assert {message.id for message in catalog if message.id} == template, "run pybabel update"
    untranslated = [message.id for message in catalog if message.id and (not message.string or message.fuzzy)]
    assert untranslated == []
    # Babel's own checks: python-format placeholders the same in msgid and msgstr.
    assert [(message.id, errors) for message, errors in catalog.check()] == []


def test_a_catalogue_translates_at_run_time_without_a_compiled_file():
    assert translations("fr").gettext("Invoice %(number)s") == "Facture %(number)s"
    assert translations("en").gettext("Invoice %(number)s") == "Invoice %(number)s"
    with pytest.raises(ValueError, match="no catalogue for locale 'de'"):
        translations("de")
