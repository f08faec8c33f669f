"""Payment attempts: what a claim is, and how the gateway's answers are recorded.

Shared by the payment batch (collect) and the janitor, so that an answer is recorded the same
way whoever got it: attempt settled, invoice paid, event in the outbox, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from renewly.adapters.db.bulk import insert_rows, update_rows
from renewly.adapters.db.tables import invoices, outbox, payment_attempts
from renewly.bootstrap import App
from renewly.domain.invoices import InvoiceStatus
from renewly.domain.payments import ChargeRequest, GatewayResult, Outcome
from renewly.services.dunning_outcomes import after_charges, lock_accounts


@dataclass(frozen=True)
class Claim:
    invoice_id: int
    account_id: int
    number: int  # the attempt's number on this invoice: 1, 2, ...
    card_id: int
    reason: str
    request: ChargeRequest
    attempt_id: int = 0  # known once the pending attempt is written


def wall_clock() -> datetime:
    # Leases are about live processes, not billing time: they follow the wall clock even when
    # billing runs on a test clock.
    return datetime.now(UTC)


def settle_attempts(conn: Connection, app: App, answered: list[tuple[Claim, GatewayResult]], as_of: datetime) -> None:
    """Record the gateway's answers: attempts settled, invoices paid, then what that means for
    dunning (recovery R8.6/R11, a step's notice, the owner's card-retry notice), events in the outbox."""
    if not answered:
        return
    account_ids = {claim.account_id for claim, _ in answered}
    lock_accounts(conn, account_ids)  # first, as the sweep takes them: see dunning_outcomes
    unknown = Outcome.UNKNOWN.value  # the attempt's status is the outcome's (unknown too: not settled)
    update_rows(conn, payment_attempts, [{
        "id": claim.attempt_id, "status": result.outcome.value, "decline_code": result.decline_code,
        "charge": result.reference, "settled_at": as_of if result.outcome.value != unknown else None,
    } for claim, result in answered])
    paid = [claim for claim, result in answered if result.outcome == Outcome.SUCCEEDED]
    update_rows(conn, invoices, [{"id": claim.invoice_id, "status": InvoiceStatus.PAID.value,
                                  "status_changed_at": as_of} for claim in paid])
    insert_rows(conn, outbox, [{
        "created_at": as_of, "topic": f"payment.{result.outcome.value}", "account_id": claim.account_id,
        "payload": {"invoice_id": claim.invoice_id, "attempt_id": claim.attempt_id, "amount": claim.request.amount,
                    "currency": claim.request.currency, "decline_code": result.decline_code},
        "delivered_at": None,
    } for claim, result in answered if result.outcome != Outcome.UNKNOWN])
    after_charges(conn, app, account_ids=account_ids, paid_invoice_ids=[claim.invoice_id for claim in paid],
                  answered_attempt_ids=[claim.attempt_id for claim, result in answered
                                        if result.outcome != Outcome.UNKNOWN], as_of=as_of)
