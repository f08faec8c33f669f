"""Reconciliation: the gateway's ledger against Renewly's attempts, charge by charge.

Finds every successful charge the gateway holds that Renewly has no successful attempt for
(money taken without a record: the double charge of Kill Bill issue 1015 shows up here), and
every attempt Renewly counts as succeeded that the gateway does not know, or knows differently.

An attempt without an answer yet (pending: a batch is at the gateway, or died there, or was
stopped at once; unknown: the call timed out) is not a discrepancy: Renewly holds its record,
and the janitor settles it with the same idempotency key, whatever the gateway did. Reconcile
lists such attempts apart, with when the janitor will take each: a pending one once its lease
ends (wall-clock time: a live batch is still waiting for the answer until then), an unknown one
at the next payment batch. A charge the gateway made for one of them is counted there, not as
a charge without a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.locks import held_by_a_dead_worker
from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.payments.rules.charges import UNSETTLED, AttemptStatus, Outcome
from renewly.ports import Ports
from renewly.shared.money import Money


@dataclass
class Discrepancy:
    # charge_without_record, record_without_charge, amount_mismatch, paid_invoice_without_charge,
    # charge_on_unpaid_invoice (money taken for an invoice voided meanwhile: refund it)
    kind: str
    idempotency_key: str | None
    detail: str


@dataclass
class Unanswered:
    """An attempt still waiting for the gateway's answer: the janitor settles it."""

    invoice: str
    account_id: int
    amount: int
    currency: str
    status: str  # pending or unknown
    attempted_at: datetime  # the moment the batch charged as of (billing time)
    lease_expires_at: datetime | None  # wall-clock: a pending attempt is its batch's until then
    charged_at_gateway: bool  # the gateway holds a successful charge under its key
    settled_after: datetime  # the first payment batch from this moment on settles it (wall-clock)


@dataclass
class ReconcileReport:
    gateway_charges: int = 0
    local_successes: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    unanswered: list[Unanswered] = field(default_factory=list)


def reconcile(app: Ports) -> ReconcileReport:
    ledger = {charge.idempotency_key: charge for charge in app.gateway.ledger()
              if charge.outcome == Outcome.SUCCEEDED}
    with app.engine.connect() as conn:
        local = {row.idempotency_key: row for row in conn.execute(
            select(payment_attempts.c.idempotency_key, payment_attempts.c.amount, payment_attempts.c.currency,
                   payment_attempts.c.invoice_id, invoices.c.number, invoices.c.status.label("invoice_status"))
            .join(invoices, invoices.c.id == payment_attempts.c.invoice_id)
            .where(payment_attempts.c.status == AttemptStatus.SUCCEEDED.value))}
        paid_without_success = conn.execute(
            select(invoices.c.number).where(invoices.c.status == "paid", invoices.c.kind == "invoice",
                                            invoices.c.total > 0,
                                            ~select(payment_attempts.c.id).where(
                                                payment_attempts.c.invoice_id == invoices.c.id,
                                                payment_attempts.c.status == AttemptStatus.SUCCEEDED.value).exists())
        ).scalars().all()
        waiting = conn.execute(
            select(payment_attempts.c.idempotency_key, payment_attempts.c.account_id, payment_attempts.c.amount,
                   payment_attempts.c.currency, payment_attempts.c.status, payment_attempts.c.created_at,
                   payment_attempts.c.lease_expires_at, invoices.c.number,
                   held_by_a_dead_worker(conn, payment_attempts.c.worker_id, app.settings.worker.stalled_seconds)
                   .label("claimant_dead"))
            .join(invoices, invoices.c.id == payment_attempts.c.invoice_id)
            .where(payment_attempts.c.status.in_([status.value for status in UNSETTLED]))
            .order_by(payment_attempts.c.id)).all()
    now = wall_clock()
    report = ReconcileReport(gateway_charges=len(ledger), local_successes=len(local), unanswered=[
        Unanswered(invoice=row.number, account_id=row.account_id, amount=row.amount, currency=row.currency,
                   status=row.status, attempted_at=row.created_at, lease_expires_at=row.lease_expires_at,
                   charged_at_gateway=row.idempotency_key in ledger,
                   settled_after=janitor_takes_it_at(row.status, row.lease_expires_at, now,
                                                     claimant_dead=bool(row.claimant_dead)))
        for row in waiting])
    unanswered_keys = {row.idempotency_key for row in waiting}
    for key, charge in ledger.items():
        record = local.get(key)
        if record is None and key in unanswered_keys:
            continue  # recorded, not answered yet: listed among the unanswered
        if record is None:
            report.discrepancies.append(Discrepancy("charge_without_record", key,
                                                    f"{charge.reference}: {said(charge.amount, charge.currency)}"))
        elif (record.amount, record.currency) != (charge.amount, charge.currency):
            report.discrepancies.append(Discrepancy(
                "amount_mismatch", key, f"gateway {said(charge.amount, charge.currency)}, "
                                        f"Renewly {said(record.amount, record.currency)}"))
    for key, record in local.items():
        if key not in ledger:
            report.discrepancies.append(Discrepancy(
                "record_without_charge", key,
                f"invoice id {record.invoice_id}: {said(record.amount, record.currency)}"))
    for key, record in local.items():
        if record.invoice_status != "paid":
            report.discrepancies.append(Discrepancy(
                "charge_on_unpaid_invoice", key, f"{record.number} is {record.invoice_status} but was charged "
                                                 f"{said(record.amount, record.currency)}"))
    for number in paid_without_success:
        report.discrepancies.append(Discrepancy("paid_invoice_without_charge", None, number))
    return report


def janitor_takes_it_at(status: str, lease_expires_at: datetime | None, now: datetime, *,
                        claimant_dead: bool = False) -> datetime:
    """From when the janitor takes an unanswered attempt: a pending one's lease is its batch's
    (it may still be waiting for the answer); an unknown one, one whose lease has ended, or one
    whose queue worker is taken for dead, now."""
    if (status == AttemptStatus.PENDING.value and lease_expires_at is not None and lease_expires_at > now
            and not claimant_dead):
        return lease_expires_at
    return now



def said(amount: int, currency: str) -> str:
    """An amount as the operator reads it: formatted with its currency, not bare minor units."""
    return Money(amount, currency).format("en")
