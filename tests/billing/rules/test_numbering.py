"""R2.1: documents are numbered in year series, credit notes in their own."""

from __future__ import annotations

from datetime import date

from renewly.billing.rules.invoices import InvoiceKind
from renewly.billing.rules.numbering import by_series, credit_note_series, invoice_number, series_for


def test_r2_1_numbers_are_year_series_and_credit_notes_have_their_own():
    assert invoice_number("2026", 123) == "2026-000123"
    assert invoice_number(credit_note_series("2026"), 1) == "CN-2026-000001"


def test_r2_1_a_document_is_numbered_in_its_issue_year_s_series_of_its_kind():
    assert series_for(InvoiceKind.INVOICE, date(2026, 12, 31)) == "2026"
    assert series_for(InvoiceKind.CREDIT_NOTE, date(2027, 1, 1)) == "CN-2027"


def test_r2_1_a_slice_takes_one_block_per_series_always_locked_in_the_same_order():
    assert by_series(["2027", "CN-2026", "2027", "2026"]) == [("2026", [3]), ("2027", [0, 2]), ("CN-2026", [1])]
