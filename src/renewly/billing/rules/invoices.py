"""Invoices: drafted here from a snapshot, numbered and stored by the service, never edited after.

An issued invoice is a legal document (R2.1): sequential gapless number, issue date, period,
lines, subtotal, tax, total, currency, seller and buyer identity. The buyer is a snapshot frozen
at issue (R3.1). A correction is a credit note that points at the invoice (R2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from babel.dates import format_date

from renewly.accounts.rules.members import REASON_LENGTH, validate_text
from renewly.config.texts import text
from renewly.shared.calendar import local_midnight_utc, period_boundary
from renewly.shared.errors import InvalidInput, NotAllowed
from renewly.shared.money import MAX_DOCUMENT_TOTAL, Money, round_minor


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class LineKind(StrEnum):
    SUBSCRIPTION = "subscription"
    PRORATION = "proration"
    CREDIT_CARRIED = "credit_carried_forward"
    CREDIT_BROUGHT = "credit_brought_forward"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class TaxTable:
    """Tax rates in percent by the buyer's country (ISO 3166), with a rate for every other country."""

    rates: Mapping[str, Decimal]
    default_rate: Decimal = Decimal(0)

    def rate_for(self, country: str) -> Decimal:
        return self.rates.get((country or "").upper(), self.default_rate)

    def tax_on(self, subtotal: int, rate: Decimal) -> int:
        return _tax_on(subtotal, rate)


@lru_cache(maxsize=4096)
def _tax_on(subtotal: int, rate: Decimal) -> int:
    # Cached: a renewal batch taxes the same few subtotals at the same few rates over and over.
    return round_minor(Decimal(subtotal) * rate / 100)


@dataclass(frozen=True, slots=True)
class PendingItem:
    """An amount waiting for the subscription's next invoice (a proration, a carried credit)."""

    id: int
    kind: str
    description: str
    amount: int
    period_start: date | None = None
    period_end: date | None = None


# The four classes below are built once per renewal, a million times in a big batch, so they are not
# frozen: a frozen dataclass sets each field through object.__setattr__, which cost 4.5 µs of the
# batch's 37 µs of Python per invoice (bench/renewal.py). Nothing changes them after they are
# built; what must never change, an issued invoice, is guarded by the database (R2.4).
@dataclass(slots=True)
class RenewalSnapshot:
    """Everything the renewal of one subscription depends on, read in one query for a whole slice."""

    subscription_id: int
    account_id: int
    locale: str
    timezone: str
    currency: str
    buyer: Mapping[str, str]
    plan_name: str
    interval: str
    unit_amount: int
    seats: int
    anchor_date: date
    period_index: int  # the period this renewal invoices; 0 is the first
    pending_items: tuple[PendingItem, ...] = ()


@dataclass(slots=True)
class InvoiceLine:
    kind: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: date | None = None
    period_end: date | None = None  # exclusive, like the invoice's period


@dataclass(slots=True)
class InvoiceDraft:
    kind: str
    account_id: int
    subscription_id: int | None
    currency: str
    locale: str
    issue_date: date
    period_start: date | None
    period_end: date | None
    lines: tuple[InvoiceLine, ...]
    subtotal: int
    tax_rate: Decimal
    tax: int
    total: int
    seller: Mapping[str, str]
    buyer: Mapping[str, str]
    consumed_item_ids: tuple[int, ...] = ()
    credit_carried_forward: int = 0  # a positive amount owed back to the buyer on the next invoice


@dataclass(slots=True)
class Renewal:
    invoice: InvoiceDraft
    next_period_index: int
    next_period_start: date  # also the end of the invoiced period
    next_renewal_at: datetime  # local midnight of next_period_start, in UTC


@lru_cache(maxsize=4096)
def format_day(day: date, locale: str) -> str:
    # Cached: a renewal batch formats the same few dates thousands of times.
    return format_date(day, format="medium", locale=locale)


def describe_period(start: date, end_exclusive: date, locale: str) -> str:
    return text("invoice.period", locale, start=format_day(start, locale),
                end=format_day(end_exclusive - timedelta(days=1), locale))


@lru_cache(maxsize=4096)
def describe_subscription_line(plan_name: str, interval: str, start: date, end: date, locale: str) -> str:
    return text("invoice.subscription_line", locale, plan=plan_name,
                interval=text(f"invoice.interval.{interval}", locale), period=describe_period(start, end, locale))


def describe_proration(plan_name: str, old: int, new: int, day: date, end: date, locale: str) -> str:
    return text("invoice.proration", locale, plan=plan_name, old=old, new=new, day=format_day(day, locale),
                end=format_day(end - timedelta(days=1), locale))


def describe_credit_brought_forward(locale: str) -> str:
    return text("invoice.credit_brought_forward", locale)


def prorate_seat_change(unit_amount: int, old_seats: int, new_seats: int,
                        change_day: date, period_start: date, period_end: date) -> int:
    """What a seat change costs (positive) or credits (negative) for the rest of the paid period.

    Counted in whole days: the change day itself is charged at the new seat count.
    """
    if not period_start <= change_day < period_end:
        return 0
    remaining = Decimal((period_end - change_day).days)
    whole = Decimal((period_end - period_start).days)
    return round_minor(Decimal((new_seats - old_seats) * unit_amount) * remaining / whole)


def draft_renewal(snapshot: RenewalSnapshot, issue_date: date, taxes: TaxTable,
                  seller: Mapping[str, str], periods: int = 1) -> Renewal:
    """The invoice for the snapshot's next period (or next `periods`: a backdated subscription's
    one catch-up invoice, a line per period), and where the subscription goes after it."""
    billed = [_period(snapshot.anchor_date, snapshot.interval, index)
              for index in range(snapshot.period_index, snapshot.period_index + periods)]
    lines = []
    for period_start, period_end in billed:
        lines.append(InvoiceLine(
            kind=LineKind.SUBSCRIPTION,
            description=describe_subscription_line(snapshot.plan_name, snapshot.interval, period_start, period_end,
                                                   snapshot.locale),
            quantity=snapshot.seats, unit_amount=snapshot.unit_amount,
            amount=snapshot.seats * snapshot.unit_amount, period_start=period_start, period_end=period_end))
    start, end = billed[0][0], billed[-1][1]
    lines += [InvoiceLine(kind=item.kind, description=item.description, quantity=1, unit_amount=item.amount,
                          amount=item.amount, period_start=item.period_start, period_end=item.period_end)
              for item in snapshot.pending_items]
    subtotal = sum(line.amount for line in lines)
    carried = 0
    if subtotal < 0:
        # Invoices never go below zero: the excess credit waits for the next invoice.
        carried = -subtotal
        lines.append(InvoiceLine(kind=LineKind.CREDIT_CARRIED,
                                 description=text("invoice.credit_carried_forward", snapshot.locale),
                                 quantity=1, unit_amount=carried, amount=carried))
        subtotal = 0
    rate = taxes.rate_for(snapshot.buyer.get("country", ""))
    tax = taxes.tax_on(subtotal, rate)
    if subtotal + tax > MAX_DOCUMENT_TOTAL:
        # Only data written before the bounds at the door could get here: the batch parks this
        # subscription with this reason and goes on with the others.
        raise InvalidInput(f"the invoice of subscription {snapshot.subscription_id} would total {subtotal + tax} "
                           f"minor units, above the {MAX_DOCUMENT_TOTAL} a document may carry",
                           code="invoice_too_large")
    invoice = InvoiceDraft(
        kind=InvoiceKind.INVOICE, account_id=snapshot.account_id, subscription_id=snapshot.subscription_id,
        currency=snapshot.currency, locale=snapshot.locale, issue_date=issue_date,
        period_start=start, period_end=end, lines=tuple(lines), subtotal=subtotal, tax_rate=rate, tax=tax,
        total=subtotal + tax, seller=seller, buyer=snapshot.buyer,
        consumed_item_ids=tuple(item.id for item in snapshot.pending_items), credit_carried_forward=carried)
    return Renewal(invoice=invoice, next_period_index=snapshot.period_index + periods, next_period_start=end,
                   next_renewal_at=_local_midnight_utc(end, snapshot.timezone))


# Cached: in a batch, thousands of subscriptions share an anchor date, a period and a time zone.
@lru_cache(maxsize=4096)
def _period(anchor: date, interval: str, index: int) -> tuple[date, date]:
    return period_boundary(anchor, interval, index), period_boundary(anchor, interval, index + 1)


_local_midnight_utc = lru_cache(maxsize=4096)(local_midnight_utc)


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """An invoice as stored: what a credit note needs to know about it."""

    id: int
    number: str
    kind: str
    status: str
    account_id: int
    currency: str
    locale: str
    subtotal: int
    tax_rate: Decimal
    tax: int
    total: int
    seller: Mapping[str, str]
    buyer: Mapping[str, str]
    credited_subtotal: int = 0  # what earlier credit notes already took back, before tax


def draft_credit_note(invoice: IssuedInvoice, reason: str, issue_date: date, amount: int | None = None,
                      ) -> InvoiceDraft:
    """A credit note for `amount` (before tax; default: all not yet credited) of an issued invoice.

    It carries the invoice's own seller, buyer and tax rate: it corrects that document, as issued.
    """
    if invoice.kind != InvoiceKind.INVOICE:
        raise NotAllowed(f"{invoice.number} is a credit note; only invoices can be credited", code="not_an_invoice")
    if not (reason or "").strip():
        raise InvalidInput("a credit note needs a reason", code="reason_required")
    reason = validate_text(reason, "a credit note's reason", REASON_LENGTH)
    creditable = invoice.subtotal - invoice.credited_subtotal
    amount = creditable if amount is None else amount
    if amount <= 0 or amount > creditable:
        # --amount is in minor units: the bounds say both, and what the units amount to.
        raise InvalidInput(f"{invoice.number} can be credited between 1 and {creditable} minor units "
                           f"({Money(creditable, invoice.currency).format('en')}), asked {amount} "
                           f"({Money(amount, invoice.currency).format('en')})", code="invalid_credit_amount")
    description = text("invoice.credit", invoice.locale, number=invoice.number, reason=reason.strip())
    line = InvoiceLine(kind=LineKind.CREDIT, description=description, quantity=1, unit_amount=amount, amount=amount)
    tax = TaxTable({}).tax_on(amount, invoice.tax_rate)
    return InvoiceDraft(
        kind=InvoiceKind.CREDIT_NOTE, account_id=invoice.account_id, subscription_id=None,
        currency=invoice.currency, locale=invoice.locale, issue_date=issue_date, period_start=None,
        period_end=None, lines=(line,), subtotal=amount, tax_rate=invoice.tax_rate, tax=tax, total=amount + tax,
        seller=invoice.seller, buyer=invoice.buyer)

