"""What an issued invoice or credit note shows, decided from its frozen rows alone (R2.4, R3.1).

The document's values (amounts, dates, countries, the due date, the totals per VAT rate, the
Factur-X figures) come from the invoice row, its lines and the seller and buyer snapshots frozen
into it at issue, never from today's settings or the account's current address: rendered today
or in five years, the same rows give the same document. Labels are the template's, from the
gettext catalogue of the invoice's language (`config/catalogues.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from renewly.shared.money import Money, minor_unit_exponent

INVOICE_TYPE_CODE = "380"  # UNTDID 1001: commercial invoice
CREDIT_NOTE_TYPE_CODE = "381"  # UNTDID 1001: credit note


@dataclass(frozen=True, slots=True)
class FrozenLine:
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: date | None = None
    period_end: date | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class FrozenDocument:
    """An issued invoice or credit note as its rows hold it: the only input of its document."""

    number: str
    kind: str  # "invoice" or "credit_note"
    issue_date: date
    period_start: date | None
    period_end: date | None  # exclusive
    currency: str
    locale: str
    subtotal: int
    tax_rate: str  # percent, as stored
    tax: int
    total: int
    seller: Mapping[str, str]
    buyer: Mapping[str, str]
    lines: tuple[FrozenLine, ...]
    credited_number: str | None = None  # a credit note's invoice
    credited_issue_date: date | None = None

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @property
    def due_date(self) -> date | None:
        """The issue date plus the payment terms frozen with the seller; none on a credit note,
        which is settled by being issued, nor on an invoice issued before the terms were frozen."""
        days = self.seller.get("payment_terms_days")
        if self.is_credit_note or days is None or days == "":
            return None
        return self.issue_date + timedelta(days=int(days))


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    rate: Decimal  # percent
    base: int  # minor units
    tax: int


def tax_subtotals(document: FrozenDocument) -> tuple[TaxSubtotal, ...]:
    """The totals per VAT rate. A document carries one rate today (the buyer's country's), so one
    subtotal: its lines' sum and its tax, as stored, never recomputed."""
    return (TaxSubtotal(Decimal(document.tax_rate), document.subtotal, document.tax),)


# -- for people: formatted in the document's language ----------------------------------------------

def money(amount: int, document: FrozenDocument) -> str:
    return Money(amount, document.currency).format(document.locale)


@cache
def day(value: date, locale: str) -> str:
    return format_date(value, format="long", locale=locale)


def last_day(end_exclusive: date, locale: str) -> str:
    return day(end_exclusive - timedelta(days=1), locale)


def rate(percent: Decimal | str, locale: str) -> str:
    """20 -> "20%" (en), "20 %" (fr); 5.5 -> "5.5%", "5,5 %": the locale's pattern, every decimal kept."""
    return format_percent(Decimal(percent) / 100, locale=locale, decimal_quantization=False)


def number(value: Decimal | str, locale: str) -> str:
    return format_decimal(Decimal(value), format="#,##0.##", locale=locale)


@cache
def country(code: str, locale: str) -> str:
    """A country's name in the document's language; its code when CLDR has none."""
    if not code:
        return ""
    return str(Locale.parse(locale).territories.get(code.upper(), code.upper()))


# -- for machines: the Factur-X (CII) figures -------------------------------------------------------

def cii_amount(amount: int, currency: str) -> str:
    """Minor units as CII writes an amount: major units with the currency's decimals (1900 USD -> 19.00)."""
    exponent = minor_unit_exponent(currency)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"


def cii_rate(percent: str) -> str:
    return f"{Decimal(percent):.2f}"


def cii_date(value: date) -> str:
    return value.strftime("%Y%m%d")  # format 102


def vat_category(percent: str) -> str:
    """UNCL 5305: S (standard rate) when tax is charged; O (outside the scope of VAT) at 0 %, which
    is what the tax table's default rate stands for (a buyer outside the taxed countries)."""
    return "S" if Decimal(percent) > 0 else "O"


def cii_line(line: FrozenLine) -> tuple[str, int, int]:
    """(quantity, net unit price, line total) in minor units, the unit price never negative as
    EN 16931 wants it: a credit line of -500 is -1 x 500."""
    if line.unit_amount < 0:
        return str(-line.quantity), -line.unit_amount, line.amount
    return str(line.quantity), line.unit_amount, line.amount
