from __future__ import annotations

from decimal import Decimal

import pytest

from renewly.shared.errors import InvalidInput
from renewly.shared.money import Money, minor_unit_exponent, round_minor, validate_currency


def spaces(text: str) -> str:
    """CLDR separates French thousands with a narrow no-break space and the symbol with a no-break space."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize("currency, exponent", [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3)])
def test_minor_units_per_currency_come_from_babel(currency, exponent):
    assert minor_unit_exponent(currency) == exponent


def test_an_amount_is_minor_units_of_its_currency():
    assert Money(1900, "USD").as_decimal() == Decimal("19.00")
    assert Money(1900, "JPY").as_decimal() == Decimal("1900")
    assert Money(1900, "BHD").as_decimal() == Decimal("1.900")


@pytest.mark.parametrize("amount, currency, locale, shown", [
    (123456, "USD", "en", "$1,234.56"),
    (123456, "EUR", "en", "€1,234.56"),
    (123456, "EUR", "fr", "1 234,56 €"),
    (1234, "JPY", "en", "¥1,234"),
    (-500, "USD", "en", "-$5.00"),
])
def test_r12_1_amounts_are_formatted_for_the_locale(amount, currency, locale, shown):
    assert spaces(Money(amount, currency).format(locale)) == shown


@pytest.mark.parametrize("amount", [19.0, Decimal("19"), "1900", True])
def test_an_amount_that_is_not_integer_minor_units_is_refused(amount):
    with pytest.raises(TypeError):
        Money(amount, "USD")


def test_amounts_of_different_currencies_do_not_mix():
    assert Money(100, "EUR") + Money(50, "EUR") == Money(150, "EUR")
    assert Money(100, "EUR") - Money(150, "EUR") == -Money(50, "EUR")
    with pytest.raises(ValueError):
        Money(100, "EUR") + Money(100, "USD")


def test_a_known_currency_is_normalized():
    assert validate_currency(" eur ") == "EUR"


@pytest.mark.parametrize("code", ["ABC", "EURO", "US", "", "€"])
def test_an_unknown_currency_is_refused(code):
    with pytest.raises(InvalidInput) as refused:
        validate_currency(code)
    assert refused.value.code == "unknown_currency"


@pytest.mark.parametrize("value, rounded", [
    ("0.5", 1), ("2.5", 3), ("218.5", 219), ("1.49", 1), ("-0.5", -1), ("-2.5", -3), ("7", 7)])
def test_fractions_of_a_minor_unit_round_half_away_from_zero(value, rounded):
    assert round_minor(Decimal(value)) == rounded


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "DEM", "FRF"])
def test_codes_nobody_can_pay_in_are_refused(code):
    with pytest.raises(InvalidInput):
        validate_currency(code)


@pytest.mark.parametrize("code", ["XOF", "XAF", "CHF", "jpy"])
def test_currencies_in_use_are_accepted(code):
    assert validate_currency(code) == code.upper()
