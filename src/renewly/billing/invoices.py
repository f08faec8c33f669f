"""Reading invoices, and correcting them with credit notes (never by editing them, R2.4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import MAXYEAR, MINYEAR, date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from renewly.accounts.accounts import load_account, lock_accounts
from renewly.accounts.rules.members import REASON_LENGTH, validate_text
from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import invoice_lines, invoices, payment_attempts
from renewly.billing.issuing import store_documents
from renewly.billing.rules.invoices import InvoiceStatus, IssuedInvoice, draft_credit_note
from renewly.outbox import emails as notices
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.outbox.rendering import templates_of
from renewly.payments.rules.charges import UNSETTLED
from renewly.ports import Ports
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound


def list_invoices(app: Ports, account_id: int | None = None) -> list[dict[str, Any]]:
    query = select(invoices).order_by(invoices.c.id)
    if account_id is not None:
        query = query.where(invoices.c.account_id == account_id)
    with reading(app.engine) as conn:
        return [_summary(row) for row in conn.execute(query)]


def show_invoice(app: Ports, number: str) -> dict[str, Any]:
    with reading(app.engine) as conn:
        shown = as_shown(conn.execute(_NUMBERED, {"number": number}).all())
    if not shown:
        raise NotFound(f"no invoice numbered {number!r}", code="unknown_invoice")
    return shown[0]


def with_lines(documents: Select) -> Select:
    """`documents` (a select of `invoices` rows, in its own order and limit) as issued, in one
    statement: one row per line (one for a document without any), with the number of the
    invoice a credit note corrects. `as_shown` makes the documents of its rows. One round trip
    whatever the page holds: the lines and those numbers asked apart took two more, half the
    API's invoice list (docs/performance.md, "API")."""
    page = documents.subquery("page")
    credited = invoices.alias("credited")
    return (select(page, credited.c.number.label("credited_invoice_number"),
                   *(invoice_lines.c[key].label(f"line_{key}") for key in _LINE_KEYS))
            .select_from(page.outerjoin(invoice_lines, invoice_lines.c.invoice_id == page.c.id)
                         .outerjoin(credited, credited.c.id == page.c.credited_invoice_id))
            .order_by(page.c.id, invoice_lines.c.position))


def as_shown(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The invoices and credit notes of rows read `with_lines`, in their order: each with its
    lines, its seller and buyer snapshots, and a credit note with the number of the invoice it
    corrects."""
    shown: list[dict[str, Any]] = []
    for row in rows:
        if not shown or shown[-1]["id"] != row.id:
            shown.append({**_summary(row), "credited_invoice_number": row.credited_invoice_number,
                          "seller": row.seller, "buyer": row.buyer, "tax_rate": row.tax_rate, "lines": []})
        if row.line_position is not None:
            shown[-1]["lines"].append({key: getattr(row, f"line_{key}") for key in _LINE_KEYS})
    return shown


_LINE_KEYS = ("position", "kind", "description", "quantity", "unit_amount", "amount", "period_start", "period_end")
_NUMBERED = with_lines(select(invoices).where(invoices.c.number == bindparam("number")))


def _summary(row) -> dict[str, Any]:
    return {key: getattr(row, key) for key in (
        "id", "number", "kind", "status", "account_id", "subscription_id", "credited_invoice_id", "issue_date",
        "period_start", "period_end", "currency", "subtotal", "tax", "total", "locale")}


def _find(conn: Connection, number: str):
    row = conn.execute(select(invoices).where(invoices.c.number == number)).first()
    if row is None:
        raise NotFound(f"no invoice numbered {number!r}", code="unknown_invoice")
    return row


def issue_credit_note(app: Ports, number: str, *, reason: str, amount: int | None = None, actor: str) -> str:
    """Credit all of an invoice (or `amount` of it, before tax). An open invoice fully credited is void."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        # The account first, as a payment batch settling this invoice takes it: the status read
        # below is then the one this credit note sees to the end (paid stays paid, never void).
        lock_accounts(conn, [conn.execute(select(invoices.c.account_id)
                                          .where(invoices.c.number == number)).scalar() or 0])
        row = _find(conn, number)
        if conn.execute(select(payment_attempts.c.id).where(
                payment_attempts.c.invoice_id == row.id,
                payment_attempts.c.status.in_([status.value for status in UNSETTLED]))).first():
            raise Conflict(f"invoice {number} has a charge whose answer is not known yet; credit it once the "
                           "payment batch has settled it (renewly collect)", code="payment_in_flight")
        credited = conn.execute(select(func.coalesce(func.sum(invoices.c.subtotal), 0))
                                .where(invoices.c.credited_invoice_id == row.id)).scalar_one()
        invoice = IssuedInvoice(
            id=row.id, number=row.number, kind=row.kind, status=row.status, account_id=row.account_id,
            currency=row.currency, locale=row.locale, subtotal=row.subtotal, tax_rate=Decimal(row.tax_rate),
            tax=row.tax, total=row.total, seller=row.seller, buyer=row.buyer, credited_subtotal=int(credited))
        draft = draft_credit_note(invoice, reason, now.astimezone(app.seller_zone).date(), amount)
        [credit_id] = store_documents(conn, [draft], issued_at=now, credited_invoice_ids=[row.id])
        credit_number = conn.execute(select(invoices.c.number).where(invoices.c.id == credit_id)).scalar_one()
        if row.status == InvoiceStatus.OPEN and credited + draft.subtotal == row.subtotal:
            conn.execute(invoices.update().where(invoices.c.id == row.id,
                                                 invoices.c.status == InvoiceStatus.OPEN.value)
                         .values(status=InvoiceStatus.VOID.value, status_changed_at=now))
            # Nothing left to chase on it: a dunning case with nothing else unpaid ends here.
            app.settlement.after_void(conn, app, row.id, now)
        audit(conn, now, actor, "credit_note.issued", "invoice", row.number, reason=reason,
              details={"credit_note": credit_number, "subtotal": draft.subtotal, "total": draft.total})
    return credit_number




def resend_invoices_of_month(app: Ports, account_id: int, *, year: int, month: int, reason: str, actor: str,
                             ) -> list[str]:
    """R2.3: support resends the invoices issued in a given month and year to the account's
    billing recipients (R4.3), one e-mail each with its PDF attached (the stored one, rendered
    at delivery if it never was). Returns the numbers sent."""
    if not 1 <= month <= 12:
        raise InvalidInput(f"no month {month}: expected 1 to 12", code="invalid_month")
    if not MINYEAR <= year < MAXYEAR:  # the month after December 9999 is in no calendar
        raise InvalidInput(f"no year {year}: expected {MINYEAR} to {MAXYEAR - 1}", code="invalid_month")
    if not (reason or "").strip():
        raise InvalidInput("a resend needs a --reason", code="reason_required")
    reason = validate_text(reason, "a resend's reason", REASON_LENGTH, field="reason")
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = load_account(conn, account_id)
        if account.status == "deleted":
            raise NotAllowed(f"account {account_id} was deleted; nobody is left to send to", code="account_deleted")
        first = date(year, month, 1)
        after = date(year + (month == 12), month % 12 + 1, 1)
        rows = conn.execute(select(invoices).where(invoices.c.account_id == account_id, invoices.c.issue_date >= first,
                                                   invoices.c.issue_date < after).order_by(invoices.c.id)).all()
        if not rows:
            raise NotFound(f"account {account_id} has no invoice issued in {year}-{month:02d}", code="no_invoice",
                           values={"month": f"{year}-{month:02d}"})
        to = notices.addressees(conn, [account_id])[account_id]
        templates = templates_of(app)
        writer.write_many(conn, [notices.invoice_email(
            templates, invoice_id=row.id, number=row.number, account_id=account_id, locale=row.locale,
            seller=row.seller["name"], buyer=row.buyer["name"], issue_date=row.issue_date, total=row.total,
            currency=row.currency, to=to, at=now, support_email=app.settings.seller.support_email,
            resent_because=reason.strip()) for row in rows])
        audit(conn, now, actor, "invoices.resent", "account", account_id, reason=reason.strip(),
              details={"numbers": [row.number for row in rows], "recipients": len(to.emails)})
    return [row.number for row in rows]
