from __future__ import annotations

import pytest

from renewly.accounts.rules.members import (
    NAME_LENGTH,
    BuyerAddress,
    Role,
    validate_country,
    validate_email,
    validate_locale,
    validate_member_role,
    validate_role,
    validate_text,
)
from renewly.shared.errors import InvalidInput


def refusal_code(check, *args) -> str:
    with pytest.raises(InvalidInput) as refused:
        check(*args)
    return refused.value.code


def test_r1_an_added_member_is_an_admin_or_an_agent():
    assert validate_member_role("admin") is Role.ADMIN
    assert validate_member_role("agent") is Role.AGENT


def test_r1_an_added_member_cannot_be_a_second_owner():
    assert refusal_code(validate_member_role, "owner") == "second_owner"


def test_r1_there_are_exactly_three_roles():
    assert [validate_role(role) for role in ("owner", "admin", "agent")] == [Role.OWNER, Role.ADMIN, Role.AGENT]
    assert refusal_code(validate_role, "boss") == "unknown_role"


def test_an_email_is_trimmed_and_lower_cased():
    assert validate_email("  Boss@Acme.Example ") == "boss@acme.example"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.io", "@acme.example", "", "a@@b.io"])
def test_a_malformed_email_is_refused(email):
    assert refusal_code(validate_email, email) == "invalid_email"


def test_r12_1_accounts_speak_english_or_french():
    assert [validate_locale("en"), validate_locale("fr")] == ["en", "fr"]
    for locale in ("de", "fr_FR", "EN", ""):
        assert refusal_code(validate_locale, locale) == "unsupported_locale"


def test_a_country_is_an_iso_3166_code():
    assert validate_country(" fr ") == "FR"
    for country in ("XX", "ZZ", "EU", "FRA", "F", "12"):
        assert refusal_code(validate_country, country) == "unknown_country"


def test_the_countries_written_out_are_those_of_the_installed_babel():
    # Checked without loading Babel's English locale at every start: the list must say what CLDR says.
    from babel import Locale

    from renewly.accounts.rules.members import _COUNTRIES, _NOT_COUNTRIES
    cldr = {code for code in Locale("en").territories if len(code) == 2 and code.isalpha()} - _NOT_COUNTRIES
    assert _COUNTRIES == cldr


def test_r3_1_the_buyer_address_snapshot_holds_every_printed_field():
    address = BuyerAddress(name="Acme SAS", line1="1 rue X", postcode="75001", city="Paris", country="fr",
                           vat_id="FR123")
    assert address.snapshot() == {"name": "Acme SAS", "line1": "1 rue X", "line2": "", "postcode": "75001",
                                  "city": "Paris", "country": "FR", "vat_id": "FR123"}


def test_r3_1_a_buyer_address_needs_a_name_and_a_real_country():
    assert refusal_code(BuyerAddress, "  ") == "invalid_address"
    with pytest.raises(InvalidInput):
        BuyerAddress(name="Acme", country="XX")


@pytest.mark.parametrize("space", ["\u00a0", "\u1680", "\u2009", "\u202f", "\u3000"])
def test_a_name_keeps_its_words_apart_with_an_ordinary_space(space):
    """A no-break or Ogham space prints differently from terminal to terminal: stored as a space."""
    name = validate_text(f"ACME{space}SAS", "the name", NAME_LENGTH)
    assert name == "ACME SAS" and name.isprintable()


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_a_line_or_paragraph_separator_in_a_name_is_refused(separator):
    with pytest.raises(InvalidInput, match="control character"):
        validate_text(f"ACME{separator}SAS", "the name", NAME_LENGTH)
