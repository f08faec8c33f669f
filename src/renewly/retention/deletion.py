"""The retention batch (R10): delete what the law no longer lets us keep, once it is due.

R10.1: `deletion_due_at` days after cancellation (set once, never moved by a reactivation), an
account loses its personal data: members, billing contacts, the buyer address, its name, the
gateway's customer and card tokens (and the cards' last four digits), the outbox rows (e-mails,
events) that name its people. Its audit entries stay, its people in them becoming pseudonyms
(services/audit_pseudonyms.py). The account row stays as a neutral label, status `deleted`, so
invoices kept for the law still point at something, and it can never be reactivated. The host
product is told by an `account.deleted` event (R10.3).

R10.2: issued invoices and credit notes are kept until `issue_date + invoice_retention_years`,
then deleted with everything that points at them. Both deletions are audited without personal
data.

Beside them, the rows of signing in that no longer serve (portal links and sessions, console
sessions and refused sign-ins) are purged: retention/sign_ins.py.

Work is claimed in slices (`FOR UPDATE SKIP LOCKED` on PostgreSQL), each deleted with one
statement per table, so two runs at once never delete twice and a second run finds nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from renewly.accounts.rules.members import AccountStatus
from renewly.adapters.db.bulk import insert_rows, update_rows
from renewly.adapters.db.guards import writing_documents
from renewly.adapters.db.locks import claim_unheld
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    billing_contacts,
    card_verifications,
    cards,
    dunning_case_invoices,
    dunning_cases,
    dunning_steps,
    gateway_customers,
    idempotency_keys,
    invoice_documents,
    invoice_lines,
    invoices,
    members,
    outbox,
    payment_attempts,
    payment_retries,
    pending_items,
    reactivations,
    subscriptions,
)
from renewly.adapters.logs import get_logger
from renewly.batches.reports import Reported
from renewly.outbox import writer
from renewly.payments.rate_limit import call_concurrently, gateway_rate_cap
from renewly.ports import Ports
from renewly.retention.pseudonyms import personal_data_of, pseudonymise_deleted
from renewly.retention.rules.deadlines import last_purgeable_issue_date, retention_ends
from renewly.retention.sign_ins import next_sign_in_purge_at, purge_sign_ins
from renewly.shared.calendar import local_date, local_midnight_utc

log = get_logger(__name__)

ACTOR = "system:retention"
# The gateway is called while a slice of accounts is locked (on SQLite: the whole database), so
# account slices stay short: about a second of calls at the default rate cap.
ACCOUNT_SLICE = 100
DELETED_BUYER_NAME = "deleted account"


@dataclass
class RetentionReport(Reported):
    accounts_deleted: int = 0
    invoices_purged: int = 0
    # Portal links and sessions, console sessions and refused sign-ins past their keeping.
    sign_ins_purged: int = 0
    # Accounts whose gateway customer could not be deleted: left as they are for the next run.
    gateway_failures: list[int] = field(default_factory=list)

    @property
    def did_anything(self) -> bool:
        return bool(self.accounts_deleted or self.invoices_purged or self.sign_ins_purged)

    def describe(self) -> str:
        return (f"{self.accounts_deleted} account(s) deleted, {self.invoices_purged} invoice(s) purged, "
                f"{self.sign_ins_purged} sign-in row(s) purged"
                + (f"; gateway refused account(s) {', '.join(map(str, self.gateway_failures))}, tried again "
                   f"next run" if self.gateway_failures else ""))


def purge_due(app: Ports, as_of: datetime, *, slice_size: int | None = None) -> RetentionReport:
    report = RetentionReport()
    size = slice_size or app.settings.batches.chunk_size
    delete_due_accounts(app, as_of, min(size, ACCOUNT_SLICE), report)
    if not app.stop.asked:
        purge_expired_invoices(app, as_of, size, report)
    if not app.stop.asked:
        report.sign_ins_purged += purge_sign_ins(app, as_of)
    return report


# -- R10.1 accounts ---------------------------------------------------------------------------------

def delete_due_accounts(app: Ports, as_of: datetime, size: int, report: RetentionReport) -> None:
    after: tuple[datetime, int] | None = None  # past the accounts the gateway refused in this run
    while not app.stop.asked:  # asked to stop: the accounts left stay due
        with app.engine.begin() as conn:
            claimed = claim_due_accounts(conn, as_of, size, after)
            if not claimed:
                return
            after = claimed[-1]
            ids = [account_id for _, account_id in claimed]
            deletable = _delete_gateway_customers(app, conn, ids, report)
            delete_personal_data(conn, deletable, as_of)
        report.accounts_deleted += len(deletable)


def claim_due_accounts(conn: Connection, as_of: datetime, limit: int,
                       after: tuple[datetime, int] | None = None) -> list[tuple[datetime, int]]:
    """(deletion_due_at, id) of cancelled accounts due for deletion, oldest first, locked."""
    query = (select(accounts.c.deletion_due_at, accounts.c.id)
             .where(accounts.c.status == AccountStatus.CANCELLED.value, accounts.c.deletion_due_at <= as_of)
             .order_by(accounts.c.deletion_due_at, accounts.c.id).limit(limit))
    if after is not None:
        due, account_id = after
        query = query.where(or_(accounts.c.deletion_due_at > due,
                                and_(accounts.c.deletion_due_at == due, accounts.c.id > account_id)))
    # NO KEY UPDATE, like every account lock: the row stays (its key too) while the gateway is
    # asked, so rows that merely point at it (an audit line, an outbox row) need not wait.
    query = claim_unheld(query, conn, key_share=True)
    return [(row.deletion_due_at, row.id) for row in conn.execute(query)]


def _delete_gateway_customers(app: Ports, conn: Connection, account_ids: list[int],
                              report: RetentionReport) -> list[int]:
    """Ask the gateway first (the claimed rows stay locked meanwhile): an account whose customer
    the gateway did not delete keeps all its data, and the next run tries again."""
    customers = conn.execute(select(gateway_customers.c.account_id, gateway_customers.c.customer)
                             .where(gateway_customers.c.account_id.in_(account_ids))).all()

    def delete(row) -> bool:
        try:
            app.gateway.delete_customer(row.customer)
            return True
        except Exception:
            log.exception("gateway customer not deleted; the next retention run tries again",
                          account_id=row.account_id)
            return False

    settings = app.settings.payments
    answers = call_concurrently(delete, customers, concurrency=settings.concurrency,
                                bucket=gateway_rate_cap(app))
    failed = {row.account_id for row, deleted in zip(customers, answers) if not deleted}
    report.gateway_failures.extend(sorted(failed))
    return [account_id for account_id in account_ids if account_id not in failed]


def delete_personal_data(conn: Connection, account_ids: list[int], as_of: datetime) -> None:
    """R10.1 for a slice of accounts, one statement per table; counts (never contents) are audited."""
    if not account_ids:
        return
    def of_these(table):
        return table.c.account_id.in_(account_ids)

    known = personal_data_of(conn, account_ids)  # before the rows that say it go
    counts = {
        "members": _count(conn, members.delete().where(of_these(members)).returning(members.c.account_id)),
        "billing_contacts": _count(conn, billing_contacts.delete().where(of_these(billing_contacts))
                                   .returning(billing_contacts.c.account_id)),
        "gateway_customers": _count(conn, gateway_customers.delete().where(of_these(gateway_customers))
                                    .returning(gateway_customers.c.account_id)),
        "cards": _count(conn, cards.update().where(of_these(cards), cards.c.status != "deleted")
                        .values(status="deleted", token="", added_by="", last4="").returning(cards.c.account_id)),
        "card_verifications": _count(conn, card_verifications.update().where(of_these(card_verifications))
                                     .values(card_token="").returning(card_verifications.c.account_id)),
        # E-mails and events name the account's people (recipients, contacts): none is kept,
        # delivered or not; `account.deleted` below tells the host product everything goes.
        "outbox_rows": _count(conn, outbox.delete().where(of_these(outbox)).returning(outbox.c.account_id)),
        "reactivations_closed": _count(conn, reactivations.update()
                                       .where(of_these(reactivations), reactivations.c.outcome.is_(None))
                                       .values(outcome="deleted", ended_at=as_of)
                                       .returning(reactivations.c.account_id)),
        "dunning_cases_written_off": _count(conn, dunning_cases.update()
                                            .where(of_these(dunning_cases), dunning_cases.c.status == "open")
                                            .values(status="written_off", closed_at=as_of, next_step_at=None,
                                                    awaiting_step_name=None)
                                            .returning(dunning_cases.c.account_id)),
        "subscriptions_cancelled": _count(conn, subscriptions.update()
                                          .where(of_these(subscriptions), subscriptions.c.status == "active")
                                          .values(status="cancelled").returning(subscriptions.c.account_id)),
    }
    update_rows(conn, accounts, [{
        "id": account_id, "name": f"account {account_id} (deleted)", "buyer_name": DELETED_BUYER_NAME,
        "buyer_line1": "", "buyer_line2": "", "buyer_postcode": "", "buyer_city": "", "buyer_country": "",
        "buyer_vat_id": "", "status": AccountStatus.DELETED.value, "banner": "none", "deleted_at": as_of,
        # The operator's key for it (`renewly import`) may name the customer (an e-mail, a name).
        "external_key": None, "updated_at": as_of} for account_id in account_ids])
    # The API's answers kept for idempotent replays (24 hours) name the account's people. After
    # the accounts' rows are written: an answer kept at the same moment holds its account's row
    # until it commits, so it is seen here, or it sees the account deleted and keeps nothing.
    counts["idempotent_answers"] = _count(conn, idempotency_keys.delete().where(of_these(idempotency_keys))
                                          .returning(idempotency_keys.c.account_id))
    # Once the accounts are marked deleted: the triggers let only their entries be rewritten.
    counts["audit_entries_pseudonymised"] = pseudonymise_deleted(conn, known)
    insert_rows(conn, audit_log, [{
        "at": as_of, "actor": ACTOR, "action": "account.personal_data_deleted", "target_type": "account",
        "target_id": str(account_id), "reason": "R10.1: the deletion delay after cancellation has passed",
        "details": {name: counted[account_id] for name, counted in counts.items()}} for account_id in account_ids])
    # R10.3: the host product deletes its own data on this event.
    writer.write_many(conn, [writer.event(as_of, "account.deleted", account_id, {"account_id": account_id})
                             for account_id in account_ids])


def _count(conn: Connection, statement) -> Counter:
    return Counter(conn.execute(statement).scalars())


# -- R10.2 invoices ---------------------------------------------------------------------------------

def _unreferenced():
    """Documents no credit note still points at: a credit note goes first, its invoice after it."""
    credit_note = aliased(invoices)
    return ~exists().where(credit_note.c.credited_invoice_id == invoices.c.id)


def purge_expired_invoices(app: Ports, as_of: datetime, size: int, report: RetentionReport) -> None:
    years = app.policy.invoice_retention_years
    cutoff = last_purgeable_issue_date(local_date(as_of, app.settings.seller.timezone), years)
    while not app.stop.asked:
        with app.engine.begin() as conn:
            query = (select(invoices.c.id, invoices.c.number)
                     .where(invoices.c.issue_date <= cutoff, _unreferenced())
                     .order_by(invoices.c.issue_date, invoices.c.id).limit(size))
            query = claim_unheld(query, conn, of=invoices)
            claimed = conn.execute(query).all()
            if not claimed:
                return
            delete_invoices(conn, [row.id for row in claimed])
            numbers = sorted(row.number for row in claimed)
            conn.execute(audit_log.insert().values(
                at=as_of, actor=ACTOR, action="invoices.purged", target_type="invoices",
                target_id=f"{numbers[0]}..{numbers[-1]}",
                reason=f"R10.2: the {years}-year retention has ended",
                details={"count": len(numbers), "first": numbers[0], "last": numbers[-1],
                         "issued_on_or_before": cutoff.isoformat()}))
        report.invoices_purged += len(claimed)


def delete_invoices(conn: Connection, invoice_ids: list[int]) -> None:
    """Documents and every row pointing at them, children first."""
    account_ids = select(invoices.c.account_id).where(invoices.c.id.in_(invoice_ids)).scalar_subquery()
    cases = set(conn.execute(select(dunning_cases.c.id).where(dunning_cases.c.account_id.in_(account_ids)))
                .scalars())
    conn.execute(payment_retries.delete().where(payment_retries.c.invoice_id.in_(invoice_ids)))
    conn.execute(dunning_case_invoices.delete().where(dunning_case_invoices.c.invoice_id.in_(invoice_ids)))
    # A case goes with its account's last invoice it chased (its others, issued later, may be
    # kept longer); a case merged by migration 0007, which chases none, with the others.
    emptied = select(dunning_cases.c.id).where(dunning_cases.c.id.in_(cases), ~exists().where(
        dunning_case_invoices.c.case_id == dunning_cases.c.id))
    emptied_ids = conn.execute(emptied).scalars().all()
    conn.execute(dunning_steps.delete().where(dunning_steps.c.case_id.in_(emptied_ids)))
    conn.execute(dunning_cases.delete().where(dunning_cases.c.id.in_(emptied_ids)))
    conn.execute(payment_attempts.delete().where(payment_attempts.c.invoice_id.in_(invoice_ids)))
    # Invoiced items only: with a NULL invoice_id they would be billed again.
    conn.execute(pending_items.delete().where(pending_items.c.invoice_id.in_(invoice_ids)))
    with writing_documents(conn, "purging"):  # the triggers refuse these deletions to everybody else (R2.4)
        conn.execute(invoice_lines.delete().where(invoice_lines.c.invoice_id.in_(invoice_ids)))
        conn.execute(invoice_documents.delete().where(invoice_documents.c.invoice_id.in_(invoice_ids)))
        conn.execute(invoices.delete().where(invoices.c.id.in_(invoice_ids)))


# -- when there is work -----------------------------------------------------------------------------

def next_retention_at(conn: Connection, app: Ports) -> datetime | None:
    """The next deletion due: an account's deletion date, the end of the oldest document's
    retention, or the first sign-in row past its keeping."""
    account_due = conn.execute(select(func.min(accounts.c.deletion_due_at))
                               .where(accounts.c.status == AccountStatus.CANCELLED.value)).scalar()
    oldest = conn.execute(select(func.min(invoices.c.issue_date)).where(_unreferenced())).scalar()
    invoice_due = (local_midnight_utc(retention_ends(oldest, app.policy.invoice_retention_years),
                                      app.settings.seller.timezone) if oldest else None)
    moments = [m for m in (account_due, invoice_due, next_sign_in_purge_at(conn, app)) if m is not None]
    return min(moments) if moments else None
