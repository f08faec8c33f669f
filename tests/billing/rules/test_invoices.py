from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from renewly.billing.rules.invoices import (
    InvoiceKind,
    IssuedInvoice,
    LineKind,
    PendingItem,
    RenewalSnapshot,
    TaxTable,
    draft_credit_note,
    draft_renewal,
    prorate_seat_change,
)
from renewly.shared.errors import InvalidInput, NotAllowed

TAXES = TaxTable({"FR": Decimal(20), "DE": Decimal(19)}, default_rate=Decimal(0))
SELLER = {"name": "Renewly Demo SAS", "country": "FR"}
ISSUE_DAY = date(2026, 1, 31)


def snapshot(**changes) -> RenewalSnapshot:
    """Acme, in France, renewing 3 seats of Team at 19.00 USD a month, anchored on January 31."""
    defaults = RenewalSnapshot(
        subscription_id=7, account_id=3, locale="en", timezone="UTC", currency="USD",
        buyer={"name": "Acme", "country": "FR"}, plan_name="Team", interval="month", unit_amount=1900, seats=3,
        anchor_date=date(2026, 1, 31), period_index=0)
    return replace(defaults, **changes)


def renew(**changes):
    return draft_renewal(snapshot(**changes), ISSUE_DAY, TAXES, SELLER)


def issued(**changes) -> IssuedInvoice:
    defaults = IssuedInvoice(
        id=1, number="2026-000001", kind=InvoiceKind.INVOICE, status="open", account_id=3, currency="USD",
        locale="en", subtotal=5700, tax_rate=Decimal(20), tax=1140, total=6840, seller=SELLER,
        buyer={"name": "Acme", "country": "FR"})
    return replace(defaults, **changes)


# -- R2.1 the renewal invoice -----------------------------------------------------------------------

def test_r2_1_a_renewal_invoices_the_period_seats_times_the_price_plus_tax():
    invoice = renew().invoice
    [line] = invoice.lines
    assert (line.kind, line.quantity, line.unit_amount, line.amount) == (LineKind.SUBSCRIPTION, 3, 1900, 5700)
    assert line.description == "Team (monthly), Jan 31, 2026 – Feb 27, 2026"
    assert (invoice.period_start, invoice.period_end) == (date(2026, 1, 31), date(2026, 2, 28))
    assert (invoice.subtotal, invoice.tax_rate, invoice.tax, invoice.total) == (5700, Decimal(20), 1140, 6840)
    assert (invoice.kind, invoice.currency, invoice.issue_date) == (InvoiceKind.INVOICE, "USD", ISSUE_DAY)
    assert invoice.seller == SELLER and invoice.buyer == {"name": "Acme", "country": "FR"}


def test_r2_1_the_next_period_starts_where_this_one_ends_at_local_midnight():
    renewal = renew(period_index=1, timezone="Europe/Paris")
    assert (renewal.invoice.period_start, renewal.invoice.period_end) == (date(2026, 2, 28), date(2026, 3, 31))
    assert renewal.next_period_index == 2
    assert renewal.next_period_start == date(2026, 3, 31)
    assert renewal.next_renewal_at == datetime(2026, 3, 30, 22, tzinfo=UTC)


@pytest.mark.parametrize("country, rate, tax", [("FR", 20, 1140), ("DE", 19, 1083), ("de", 19, 1083),
                                                ("US", 0, 0), ("", 0, 0)])
def test_r2_1_tax_follows_the_buyers_country_in_the_rate_table(country, rate, tax):
    invoice = renew(buyer={"name": "Acme", "country": country}).invoice
    assert (invoice.tax_rate, invoice.tax, invoice.total) == (Decimal(rate), tax, 5700 + tax)


def test_r2_1_tax_rounds_half_up_to_the_minor_unit():
    # 11.50 at 19 % is 2.185: half up gives 2.19 where banker's rounding would give 2.18.
    invoice = renew(unit_amount=1150, seats=1, buyer={"name": "Acme", "country": "DE"}).invoice
    assert (invoice.subtotal, invoice.tax, invoice.total) == (1150, 219, 1369)


def test_r2_1_a_fractional_rate_rounds_half_up_too():
    taxes = TaxTable({"CH": Decimal("8.1")})
    invoice = draft_renewal(snapshot(unit_amount=500, seats=1, buyer={"name": "Acme", "country": "CH"}),
                            ISSUE_DAY, taxes, SELLER).invoice
    assert invoice.tax == 41  # 40.5


def test_r2_1_total_is_subtotal_plus_tax_and_subtotal_is_the_sum_of_the_lines():
    item = PendingItem(id=11, kind=LineKind.PRORATION, description="seats 3 → 5", amount=1961)
    invoice = renew(pending_items=(item,)).invoice
    assert invoice.subtotal == sum(line.amount for line in invoice.lines) == 5700 + 1961
    assert invoice.total == invoice.subtotal + invoice.tax
    assert invoice.consumed_item_ids == (11,)


def test_r12_1_a_french_account_gets_its_invoice_lines_in_french():
    [line] = renew(locale="fr").invoice.lines
    assert line.description == "Team (mensuel), du 31 janv. 2026 au 27 févr. 2026"


# -- seat changes --------------------------------------------------------------------------------------

JANUARY = (date(2026, 1, 1), date(2026, 2, 1))  # 31 days, the end exclusive


def test_adding_seats_mid_period_charges_the_remaining_days():
    # 2 more seats for the 16 days from January 16: 2 × 19.00 × 16/31 = 19.6129 → 19.61
    assert prorate_seat_change(1900, 3, 5, date(2026, 1, 16), *JANUARY) == 1961


def test_removing_seats_mid_period_credits_the_remaining_days():
    assert prorate_seat_change(1900, 5, 3, date(2026, 1, 16), *JANUARY) == -1961


def test_a_seat_change_on_the_first_day_costs_a_whole_period_and_the_last_day_one_day():
    assert prorate_seat_change(1900, 3, 4, date(2026, 1, 1), *JANUARY) == 1900
    assert prorate_seat_change(3100, 3, 4, date(2026, 1, 31), *JANUARY) == 100


@pytest.mark.parametrize("day", [date(2025, 12, 31), date(2026, 2, 1), date(2026, 3, 1)])
def test_a_seat_change_outside_the_paid_period_is_not_prorated(day):
    assert prorate_seat_change(1900, 3, 5, day, *JANUARY) == 0


def test_a_proration_is_a_line_of_the_next_invoice():
    item = PendingItem(id=1, kind=LineKind.PRORATION, description="Team: seats 5 → 3", amount=-1961,
                       period_start=date(2026, 1, 16), period_end=date(2026, 2, 1))
    invoice = renew(pending_items=(item,)).invoice
    assert [(line.kind, line.amount) for line in invoice.lines] == [(LineKind.SUBSCRIPTION, 5700),
                                                                    (LineKind.PRORATION, -1961)]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (3739, 748, 4487)  # tax 747.8


def test_a_credit_larger_than_the_charge_is_carried_forward_and_the_invoice_never_goes_below_zero():
    credit = PendingItem(id=1, kind=LineKind.PRORATION, description="Team: seats 10 → 3", amount=-10000)
    invoice = renew(pending_items=(credit,)).invoice
    assert (invoice.subtotal, invoice.tax, invoice.total) == (0, 0, 0)
    assert invoice.credit_carried_forward == 4300
    carried = invoice.lines[-1]
    assert (carried.kind, carried.amount) == (LineKind.CREDIT_CARRIED, 4300)
    assert carried.description == "Credit carried forward to the next invoice"
    assert sum(line.amount for line in invoice.lines) == 0


def test_no_credit_is_carried_when_the_charge_covers_it():
    credit = PendingItem(id=1, kind=LineKind.CREDIT_BROUGHT, description="brought", amount=-5700)
    invoice = renew(pending_items=(credit,)).invoice
    assert (invoice.total, invoice.credit_carried_forward, len(invoice.lines)) == (0, 0, 2)


# -- R2.4 credit notes ------------------------------------------------------------------------------

def test_r2_4_a_full_credit_note_takes_back_the_whole_invoice_with_its_tax_rate():
    note = draft_credit_note(issued(), "seat unused", date(2026, 2, 3))
    assert (note.kind, note.subtotal, note.tax_rate, note.tax, note.total) == (
        InvoiceKind.CREDIT_NOTE, 5700, Decimal(20), 1140, 6840)
    [line] = note.lines
    assert (line.kind, line.amount) == (LineKind.CREDIT, 5700)
    assert line.description == "Credit for invoice 2026-000001: seat unused"
    assert (note.seller, note.buyer, note.currency, note.account_id) == (SELLER, issued().buyer, "USD", 3)
    assert (note.subscription_id, note.period_start, note.issue_date) == (None, None, date(2026, 2, 3))


def test_r2_4_a_partial_credit_note_takes_back_the_amount_asked():
    note = draft_credit_note(issued(), "one seat unused", date(2026, 2, 3), amount=1900)
    assert (note.subtotal, note.tax, note.total) == (1900, 380, 2280)


def test_r2_4_crediting_more_than_is_left_is_refused():
    already = issued(credited_subtotal=3800)
    assert draft_credit_note(already, "rest", date(2026, 2, 3)).subtotal == 1900
    for amount in (1901, 0, -100):
        with pytest.raises(InvalidInput) as refused:
            draft_credit_note(already, "too much", date(2026, 2, 3), amount=amount)
        assert refused.value.code == "invalid_credit_amount"


def test_r2_4_a_fully_credited_invoice_cannot_be_credited_again():
    with pytest.raises(InvalidInput):
        draft_credit_note(issued(credited_subtotal=5700), "again", date(2026, 2, 3))


def test_r2_4_a_credit_note_cannot_itself_be_credited():
    with pytest.raises(NotAllowed) as refused:
        draft_credit_note(issued(kind=InvoiceKind.CREDIT_NOTE, number="CN-2026-000001"), "oops", date(2026, 2, 3))
    assert refused.value.code == "not_an_invoice"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_r2_4_a_credit_note_needs_a_reason(reason):
    with pytest.raises(InvalidInput) as refused:
        draft_credit_note(issued(), reason, date(2026, 2, 3))
    assert refused.value.code == "reason_required"


def test_r12_1_a_credit_note_on_a_french_invoice_is_in_french():
    [line] = draft_credit_note(issued(locale="fr"), "licence inutilisée", date(2026, 2, 3)).lines
    assert line.description == "Avoir sur la facture 2026-000001 : licence inutilisée"
