"""R2.1: how documents are numbered. Each issue year is a series of gapless sequences; credit
notes have their own series beside the invoices' (`2026-000123`, `CN-2026-000001`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from renewly.billing.rules.invoices import InvoiceKind


def invoice_number(series: str, sequence: int) -> str:
    """`2026-000123`: the series (the issue year) and a gapless sequence within it."""
    return f"{series}-{sequence:06d}"


def credit_note_series(invoice_series: str) -> str:
    return f"CN-{invoice_series}"


def series_for(kind: InvoiceKind | str, issue_date: date) -> str:
    """The series a document issued on `issue_date` is numbered in."""
    year = str(issue_date.year)
    return year if kind == InvoiceKind.INVOICE else credit_note_series(year)


def by_series(series_of: Sequence[str]) -> list[tuple[str, list[int]]]:
    """The documents' positions grouped by series, the series in the one order everybody locks
    them in (so that two writers of the same two series cannot deadlock)."""
    positions_by_series: dict[str, list[int]] = {}
    for position, series in enumerate(series_of):
        positions_by_series.setdefault(series, []).append(position)
    return sorted(positions_by_series.items())
