"""Storing issued documents: gapless numbers, lines and the `invoice.issued` event, set-based.

Every invoice and credit note goes through `store_documents`, one call per slice: it locks the
series counter (so numbers are gapless and in issue order, even with several workers), takes a
block of numbers, and writes invoices, lines and outbox rows in bulk, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import Connection, update

from renewly.adapters.db.bulk import allocate_ids, insert_rows
from renewly.adapters.db.tables import invoice_lines, invoice_series, invoices, outbox
from renewly.domain.invoices import InvoiceDraft, InvoiceKind, InvoiceStatus, credit_note_series, invoice_number


def series_for(draft: InvoiceDraft) -> str:
    year = str(draft.issue_date.year)
    return year if draft.kind == InvoiceKind.INVOICE else credit_note_series(year)


def take_sequences(conn: Connection, series: str, count: int) -> int:
    """Reserve `count` consecutive numbers in `series`; returns the first. Holds the series lock."""
    _create_series(conn, series)
    first = conn.execute(update(invoice_series).where(invoice_series.c.series == series)
                         .values(next_sequence=invoice_series.c.next_sequence + count)
                         .returning(invoice_series.c.next_sequence)).scalar_one() - count
    return first


def _create_series(conn: Connection, series: str) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(invoice_series).values(series=series, next_sequence=1).on_conflict_do_nothing())


def store_documents(conn: Connection, drafts: Sequence[InvoiceDraft], issued_at: datetime,
                    credited_invoice_ids: Sequence[int | None] | None = None) -> list[int]:
    """Number and write the drafts in order; returns their ids."""
    if not drafts:
        return []
    ids = allocate_ids(conn, invoices, len(drafts))
    positions_by_series: dict[str, list[int]] = {}
    for position, draft in enumerate(drafts):
        positions_by_series.setdefault(series_for(draft), []).append(position)
    number_of: dict[int, tuple[str, int]] = {}
    for series, positions in positions_by_series.items():
        first = take_sequences(conn, series, len(positions))
        number_of.update((position, (series, first + offset)) for offset, position in enumerate(positions))
    credited = credited_invoice_ids or [None] * len(drafts)

    invoice_rows, line_rows, event_rows = [], [], []
    for position, (invoice_id, draft) in enumerate(zip(ids, drafts)):
        series, sequence = number_of[position]
        number = invoice_number(series, sequence)
        invoice_rows.append({
            "id": invoice_id, "number": number, "series": series, "sequence": sequence, "kind": str(draft.kind),
            "account_id": draft.account_id, "subscription_id": draft.subscription_id,
            "credited_invoice_id": credited[position], "issue_date": draft.issue_date,
            "period_start": draft.period_start, "period_end": draft.period_end, "currency": draft.currency,
            "subtotal": draft.subtotal, "tax_rate": str(draft.tax_rate), "tax": draft.tax, "total": draft.total,
            "locale": draft.locale, "seller": dict(draft.seller), "buyer": dict(draft.buyer),
            "status": str(_initial_status(draft)), "issued_at": issued_at, "status_changed_at": None})
        for line_number, line in enumerate(draft.lines, start=1):
            line_rows.append({
                "invoice_id": invoice_id, "position": line_number, "kind": str(line.kind),
                "description": line.description, "quantity": line.quantity, "unit_amount": line.unit_amount,
                "amount": line.amount, "period_start": line.period_start, "period_end": line.period_end})
        event_rows.append({
            "created_at": issued_at, "topic": f"{draft.kind}.issued", "account_id": draft.account_id,
            "payload": {"invoice_id": invoice_id, "number": number, "total": draft.total,
                        "currency": draft.currency}, "delivered_at": None})
    insert_rows(conn, invoices, invoice_rows)
    insert_rows(conn, invoice_lines, line_rows)
    insert_rows(conn, outbox, event_rows)
    return ids


def _initial_status(draft: InvoiceDraft) -> InvoiceStatus:
    # Nothing to collect on a zero invoice; a credit note is settled by being issued.
    if draft.kind == InvoiceKind.CREDIT_NOTE or draft.total == 0:
        return InvoiceStatus.PAID
    return InvoiceStatus.OPEN
