"""What a document shows, decided from its frozen rows alone (billing/rules/documents.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from renewly.billing.rules.documents import (
    FrozenDocument,
    FrozenLine,
    cii_amount,
    cii_line,
    country,
    rate,
    tax_subtotals,
    vat_category,
)

SELLER = {"name": "Example SAS", "payment_terms_days": "30"}


def document(kind: str = "invoice", seller=SELLER, **values) -> FrozenDocument:
    return FrozenDocument(**{
        "number": "2026-000001", "kind": kind, "issue_date": date(2026, 1, 31), "period_start": None,
        "period_end": None, "currency": "EUR", "locale": "fr", "subtotal": 5700, "tax_rate": "20", "tax": 1140,
        "total": 6840, "seller": seller, "buyer": {"name": "Acme"}, "lines": (), **values})


def test_the_due_date_is_the_issue_date_plus_the_terms_frozen_with_the_seller():
    assert document().due_date == date(2026, 3, 2)
    assert document(seller={**SELLER, "payment_terms_days": "0"}).due_date == date(2026, 1, 31)


def test_a_credit_note_and_an_invoice_frozen_before_the_terms_existed_have_no_due_date():
    assert document(kind="credit_note").due_date is None
    assert document(seller={"name": "Example SAS"}).due_date is None


def test_the_totals_per_rate_are_the_stored_ones_never_recomputed():
    [subtotal] = tax_subtotals(document(subtotal=1, tax=1, total=2))  # 20 % of 1 cent would round to 0
    assert (subtotal.rate, subtotal.base, subtotal.tax) == (Decimal(20), 1, 1)


def test_cii_amounts_have_the_currency_s_decimals():
    assert [cii_amount(1900, "EUR"), cii_amount(-5, "USD"), cii_amount(1900, "JPY"), cii_amount(1900, "BHD")] == [
        "19.00", "-0.05", "1900", "1.900"]


def test_a_credit_line_is_a_negative_quantity_at_a_positive_unit_price_as_en_16931_wants():
    assert cii_line(FrozenLine("proration", 1, -500, -500)) == ("-1", 500, -500)
    assert cii_line(FrozenLine("seats", 3, 1900, 5700)) == ("3", 1900, 5700)


def test_zero_rated_documents_are_outside_the_scope_of_vat_and_taxed_ones_standard():
    assert (vat_category("0"), vat_category("5.5"), vat_category("20")) == ("O", "S", "S")


def test_rates_and_countries_read_in_the_document_s_language():
    assert (rate("5.5", "en"), rate("5.5", "fr").replace("\u00a0", " ")) == ("5.5%", "5,5 %")
    assert (country("DE", "en"), country("DE", "fr"), country("", "fr")) == ("Germany", "Allemagne", "")
