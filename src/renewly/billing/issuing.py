"""Storing issued documents: gapless numbers, lines and the `invoice.issued` event, set-based.

Every invoice and credit note goes through `store_documents`, one call per slice: it locks the
series counter (so numbers are gapless and in issue order, even with several workers), takes a
block of numbers, and writes invoices, lines and outbox rows in bulk, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from renewly.adapters.db.bulk import JsonDocuments, allocate_ids, insert_ignoring_conflicts, insert_rows
from renewly.adapters.db.guards import writing_documents
from renewly.adapters.db.tables import invoice_lines, invoice_series, invoices, outbox
from renewly.billing.rules.invoices import InvoiceDraft, InvoiceKind, InvoiceStatus, credit_note_series, invoice_number

INVOICE_COLUMNS = ("id", "number", "series", "sequence", "kind", "account_id", "subscription_id",
                   "credited_invoice_id", "issue_date", "period_start", "period_end", "currency", "subtotal",
                   "tax_rate", "tax", "total", "locale", "seller", "buyer", "status", "issued_at",
                   "status_changed_at")
LINE_COLUMNS = ("invoice_id", "position", "kind", "description", "quantity", "unit_amount", "amount",
                "period_start", "period_end")
EVENT_COLUMNS = ("created_at", "topic", "account_id", "payload", "delivered_at")
# Where an invoice row gets its number, once the series lock is held.
NUMBER, SEQUENCE = INVOICE_COLUMNS.index("number"), INVOICE_COLUMNS.index("sequence")


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
    conn.execute(insert_ignoring_conflicts(conn)(invoice_series).values(series=series, next_sequence=1)
                 .on_conflict_do_nothing())


def store_documents(conn: Connection, drafts: Sequence[InvoiceDraft], issued_at: datetime,
                    credited_invoice_ids: Sequence[int | None] | None = None) -> list[int]:
    """Number and write the drafts in order; returns their ids.

    Call it as late as the transaction allows: the series lock it takes is held until the commit,
    and while it is held nobody else can issue a document. So everything that needs no number (ids,
    rows, JSON documents) is prepared before the lock, and a batch does its other writes before the
    call (the renewal batch held the lock for 95 % of its time before it did).
    """
    if not drafts:
        return []
    ids = allocate_ids(conn, invoices, len(drafts))
    credited = credited_invoice_ids or [None] * len(drafts)
    series_of = [series_for(draft) for draft in drafts]
    document = JsonDocuments(conn)  # a slice's drafts share one seller document: serialised once
    invoice_rows = [[  # number and sequence: None until the lock is taken
        invoice_id, None, series, None, str(draft.kind), draft.account_id, draft.subscription_id,
        credited_id, draft.issue_date, draft.period_start, draft.period_end, draft.currency, draft.subtotal,
        str(draft.tax_rate), draft.tax, draft.total, draft.locale,
        document(draft.seller), document(draft.buyer), str(_initial_status(draft)), issued_at, None]
        for invoice_id, draft, series, credited_id in zip(ids, drafts, series_of, credited)]
    line_rows = [(invoice_id, line_number, str(line.kind), line.description, line.quantity, line.unit_amount,
                  line.amount, line.period_start, line.period_end)
                 for invoice_id, draft in zip(ids, drafts)
                 for line_number, line in enumerate(draft.lines, start=1)]

    # Lines of an issued document are refused but while it is issued (R2.4): the way is opened
    # before the series lock, so that the time under the lock gains no round trip.
    with writing_documents(conn, "issuing"):
        numbers = _take_numbers(conn, series_of)  # the series lock, from here to the commit
        for row, (number, sequence) in zip(invoice_rows, numbers):
            row[NUMBER], row[SEQUENCE] = number, sequence
        insert_rows(conn, invoices, invoice_rows, INVOICE_COLUMNS, binary=True)
        insert_rows(conn, invoice_lines, line_rows, LINE_COLUMNS, binary=True)
    insert_rows(conn, outbox, [(issued_at, f"{draft.kind}.issued", draft.account_id,
                                {"invoice_id": invoice_id, "number": number, "total": draft.total,
                                 "currency": draft.currency}, None)
                               for invoice_id, (number, _), draft in zip(ids, numbers, drafts)], EVENT_COLUMNS,
                binary=True)
    return ids


def _take_numbers(conn: Connection, series_of: Sequence[str]) -> list[tuple[str, int]]:
    """(number, sequence) for each document, in order, numbered within its own series."""
    positions_by_series: dict[str, list[int]] = {}
    for position, series in enumerate(series_of):
        positions_by_series.setdefault(series, []).append(position)
    numbers: list[tuple[str, int]] = [("", 0)] * len(series_of)
    # Series locked in one order by everybody, so two writers of the same two series cannot deadlock.
    for series, positions in sorted(positions_by_series.items()):
        first = take_sequences(conn, series, len(positions))
        for offset, position in enumerate(positions):
            numbers[position] = (invoice_number(series, first + offset), first + offset)
    return numbers


def _initial_status(draft: InvoiceDraft) -> InvoiceStatus:
    # Nothing to collect on a zero invoice; a credit note is settled by being issued.
    if draft.kind == InvoiceKind.CREDIT_NOTE or draft.total == 0:
        return InvoiceStatus.PAID
    return InvoiceStatus.OPEN


def amount_due():
    """An invoice's total less the credit notes issued against it."""
    credit = invoices.alias("credit")
    credited = (select(func.coalesce(func.sum(credit.c.total), 0))
                .where(credit.c.credited_invoice_id == invoices.c.id).scalar_subquery())
    return invoices.c.total - credited
