"""Money: integer minor units plus an ISO 4217 currency. Never a float.

Babel knows each currency's minor-unit exponent (USD 2, JPY 0, BHD 3) and formats amounts
for people in their locale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, get_territory_currencies

from renewly.shared.errors import InvalidInput

# CLDR's legal tender as of this date: ISO 4217 also lists codes nobody can pay in (XXX, XTS,
# XAU) and withdrawn ones (DEM, FRF). A fixed date keeps the domain free of clock reads.
TENDER_AS_OF = date(2026, 1, 1)


@cache
def tender_currencies() -> frozenset[str]:
    # Babel types the keys loosely (str | int | None); CLDR's territory codes are all strings.
    return frozenset(code for territory in Locale("en").territories
                     if isinstance(territory, str) and len(territory) == 2 and territory.isalpha()
                     for code in get_territory_currencies(territory, start_date=TENDER_AS_OF, tender=True))


def validate_currency(code: str) -> str:
    """Return the upper-cased ISO 4217 code of a currency in use, or refuse it."""
    normalized = (code or "").strip().upper()
    if normalized not in tender_currencies():
        raise InvalidInput(f"unknown currency {code!r}: expected an ISO 4217 code such as EUR or USD",
                           code="unknown_currency")
    return normalized


def minor_unit_exponent(currency: str) -> int:
    return get_currency_precision(currency)


# The largest total a document may carry, in minor units: ten periods of the largest plan and seat
# count (domain/plans.py: 1e15 a period), far below what a BIGINT holds (9.2e18), so that sums of
# such amounts never overflow either engine.
MAX_DOCUMENT_TOTAL = 10**16


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units: cents for USD and EUR, yen for JPY
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money amount must be int minor units, got {type(self.amount).__name__}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def as_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-minor_unit_exponent(self.currency))

    def format(self, locale: str = "en") -> str:
        return format_currency(self.as_decimal(), self.currency, locale=locale)

    def __str__(self) -> str:
        return self.format("en")


def round_minor(value: Decimal) -> int:
    """Round a fractional minor-unit amount to whole units, half away from zero (commercial rounding)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

