"""The text catalogue (config/texts.toml): every message in every language, with the same
placeholders, looked up by id and locale through one function."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.billing.rules.invoices import describe_period, describe_subscription_line
from renewly.config.texts import LANGUAGES, CatalogueError, catalogue, has_text, parse_catalogue, text
from renewly.payments.rules.charges import decline_in_words

SOURCES = Path(__file__).resolve().parents[2] / "src" / "renewly"


def test_the_catalogue_speaks_every_language_an_account_may_choose():
    assert LANGUAGES == SUPPORTED_LOCALES


def test_every_message_has_every_language_with_the_same_placeholders():
    messages = catalogue()
    assert len(messages) > 20
    for message_id, message in messages.items():
        assert set(message.texts) == set(SUPPORTED_LOCALES), message_id
        named = {language: set(re.findall(r"\{(\w+)\}", wording)) for language, wording in message.texts.items()}
        assert named["fr"] == named["en"] == message.placeholders, message_id


def test_every_text_the_code_looks_up_is_in_the_catalogue():
    looked_up = {found for path in SOURCES.rglob("*.py")
                 for found in re.findall(r"\btext\(\"([a-z_.]+)\"", path.read_text(encoding="utf-8"))}
    assert looked_up  # the scan finds the call sites
    assert sorted(found for found in looked_up if not has_text(found)) == []


def test_a_text_is_filled_in_the_reader_s_language():
    assert text("invoice.credit", "fr", number="INV-1", reason="geste") == "Avoir sur la facture INV-1 : geste"
    assert text("invoice.credit", "en", number="INV-1", reason="goodwill") == "Credit for invoice INV-1: goodwill"


def test_a_missing_text_or_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="no text 'invoice.nothing' in 'en'"):
        text("invoice.nothing", "en")
    with pytest.raises(KeyError, match="'invoice.period' in 'de'"):
        text("invoice.period", "de", start="a", end="b")
    with pytest.raises(KeyError):
        text("invoice.period", "en", start="a")


def test_the_call_sites_render_what_they_rendered_before():
    assert describe_period(date(2026, 1, 1), date(2026, 2, 1), "fr") == "du 1 janv. 2026 au 31 janv. 2026"
    assert describe_subscription_line("Team", "year", date(2026, 1, 1), date(2027, 1, 1), "en") == (
        "Team (yearly), Jan 1, 2026 – Dec 31, 2026")
    assert decline_in_words("expired_card", "fr") == "la carte a expiré"
    # An unknown code reads as a decline; an unknown language, in English.
    assert decline_in_words("weird_code", "fr") == "la carte a été refusée par la banque"
    assert decline_in_words(None, "de") == "the card was declined by the bank"


@pytest.mark.parametrize("toml, reason", [
    ('[a.b]\nen = "x"\n', r"a.b has en; every message has en, fr"),
    ('[a.b]\nen = "x"\nfr = "y"\nde = "z"\n', r"a.b has de, en, fr"),
    ('[a.b]\nen = "{day} x"\nfr = "{jour} y"\n',
     r"a.b: the languages name different placeholders \(en: day; fr: jour\)"),
    ('[a.b]\nen = "{day:>9}"\nfr = "{day}"\n', r"a.b.en: a placeholder is a plain name \(\{day\}\)"),
    ('[a.b]\nen = "{}"\nfr = "{}"\n', r"a.b.en: a placeholder is a plain name"),
    ('[a.b]\nen = "{day"\nfr = "{day}"\n', r"a.b.en: malformed placeholder"),
    ('[a.b]\nen = ""\nfr = "y"\n', r"a.b.en: a non-empty text is required"),
    ('[a]\nen = "x"\nfr = "y"\n[a.b]\nen = "x"\nfr = "y"\n', r"a mixes texts and messages"),
])
def test_a_malformed_catalogue_is_refused_with_the_message_and_the_reason(toml, reason):
    with pytest.raises(CatalogueError, match=f"^texts.toml: {reason}"):
        parse_catalogue(toml, "texts.toml")
