"""Storing issued documents: gapless numbers, lines and the `invoice.issued` event, set-based.

Every invoice and credit note goes through `store_documents`, one call per slice: it locks the
series counter (so numbers are gapless and in issue order, even with several workers), takes a
block of numbers (`billing/numbering.py`), and writes invoices, lines and outbox rows in bulk,
in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from renewly.adapters.db.bulk import JsonDocuments, allocate_ids, insert_rows
from renewly.adapters.db.guards import writing_documents
from renewly.adapters.db.tables import invoice_lines, invoices
from renewly.billing.numbering import take_numbers
from renewly.billing.rules.invoices import InvoiceDraft, InvoiceKind, InvoiceStatus
from renewly.billing.rules.numbering import series_for
from renewly.outbox import emails, writer
from renewly.outbox.emails import InvoiceMail

INVOICE_COLUMNS = ("id", "number", "series", "sequence", "kind", "account_id", "subscription_id",
                   "credited_invoice_id", "issue_date", "period_start", "period_end", "currency", "subtotal",
                   "tax_rate", "tax", "total", "locale", "seller", "buyer", "status", "issued_at",
                   "status_changed_at")
LINE_COLUMNS = ("invoice_id", "position", "kind", "description", "quantity", "unit_amount", "amount",
                "period_start", "period_end")
# Where an invoice row gets its number, once the series lock is held.
NUMBER, SEQUENCE = INVOICE_COLUMNS.index("number"), INVOICE_COLUMNS.index("sequence")


def store_documents(conn: Connection, drafts: Sequence[InvoiceDraft], issued_at: datetime,
                    credited_invoice_ids: Sequence[int | None] | None = None,
                    send: InvoiceMail | None = None) -> list[int]:
    """Number and write the drafts in order; returns their ids. With `send`: each invoice is
    e-mailed to its account's billing recipients (`send.to`, by account), its PDF attached
    (R4.3), rendered from the templates and written in the same bulk insert as the events.

    Call it as late as the transaction allows: the series lock it takes is held until the commit,
    and while it is held nobody else can issue a document. So everything that needs no number (ids,
    rows, JSON documents) is prepared before the lock, and a batch does its other writes before the
    call (the renewal batch held the lock for 95 % of its time before it did).
    """
    if not drafts:
        return []
    ids = allocate_ids(conn, invoices, len(drafts))
    credited = credited_invoice_ids or [None] * len(drafts)
    series_of = [series_for(draft.kind, draft.issue_date) for draft in drafts]
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
        numbers = take_numbers(conn, series_of)  # the series lock, from here to the commit
        for row, (number, sequence) in zip(invoice_rows, numbers):
            row[NUMBER], row[SEQUENCE] = number, sequence
        insert_rows(conn, invoices, invoice_rows, INVOICE_COLUMNS, binary=True)
        insert_rows(conn, invoice_lines, line_rows, LINE_COLUMNS, binary=True)
    rows = [writer.event(issued_at, f"{draft.kind}.issued", draft.account_id,
                         {"invoice_id": invoice_id, "number": number, "total": draft.total, "currency": draft.currency})
            for invoice_id, (number, _), draft in zip(ids, numbers, drafts)]
    if send is not None:
        rows += [emails.invoice_email(send.templates, invoice_id=invoice_id, number=number,
                                      account_id=draft.account_id, locale=draft.locale, seller=draft.seller["name"],
                                      buyer=draft.buyer["name"], issue_date=draft.issue_date, total=draft.total,
                                      currency=draft.currency, to=send.to[draft.account_id], at=issued_at,
                                      support_email=send.support_email)
                 for invoice_id, (number, _), draft in zip(ids, numbers, drafts)
                 if draft.kind == InvoiceKind.INVOICE and send.to[draft.account_id].emails]
    writer.write_many(conn, rows)
    return ids


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
