"""Reconciliation: the gateway's ledger against Renewly's attempts, charge by charge.

Finds every successful charge the gateway holds that Renewly has no successful attempt for
(money taken without a record: the double charge of Kill Bill issue 1015 shows up here), and
every attempt Renewly counts as succeeded that the gateway does not know, or knows differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.bootstrap import App
from renewly.domain.payments import AttemptStatus, Outcome


@dataclass
class Discrepancy:
    # charge_without_record, record_without_charge, amount_mismatch, paid_invoice_without_charge,
    # charge_on_unpaid_invoice (money taken for an invoice voided meanwhile: refund it)
    kind: str
    idempotency_key: str | None
    detail: str


@dataclass
class ReconcileReport:
    gateway_charges: int = 0
    local_successes: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)


def reconcile(app: App) -> ReconcileReport:
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
    report = ReconcileReport(gateway_charges=len(ledger), local_successes=len(local))
    for key, charge in ledger.items():
        record = local.get(key)
        if record is None:
            report.discrepancies.append(Discrepancy("charge_without_record", key,
                                                    f"{charge.reference}: {charge.amount} {charge.currency}"))
        elif (record.amount, record.currency) != (charge.amount, charge.currency):
            report.discrepancies.append(Discrepancy(
                "amount_mismatch", key, f"gateway {charge.amount} {charge.currency}, "
                                        f"Renewly {record.amount} {record.currency}"))
    for key, record in local.items():
        if key not in ledger:
            report.discrepancies.append(Discrepancy(
                "record_without_charge", key, f"invoice id {record.invoice_id}: {record.amount} {record.currency}"))
    for key, record in local.items():
        if record.invoice_status != "paid":
            report.discrepancies.append(Discrepancy(
                "charge_on_unpaid_invoice", key, f"{record.number} is {record.invoice_status} but was charged "
                                                 f"{record.amount} {record.currency}"))
    for number in paid_without_success:
        report.discrepancies.append(Discrepancy("paid_invoice_without_charge", None, number))
    return report
