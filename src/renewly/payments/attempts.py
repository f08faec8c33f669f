"""Payment attempts: what a claim is, and how the gateway's answers are recorded.

Shared by the payment batch (collect) and the janitor, so that an answer is recorded the same
way whoever got it: attempt settled, invoice paid, event in the outbox, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from renewly.accounts.accounts import lock_accounts
from renewly.adapters.db.bulk import among, update_rows
from renewly.adapters.db.locks import hold_until_commit
from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.adapters.logs import get_logger
from renewly.billing.rules.invoices import InvoiceStatus
from renewly.outbox import writer
from renewly.payments.rules.charges import AttemptStatus, ChargeRequest, GatewayResult, Outcome
from renewly.ports import Ports

log = get_logger(__name__)


@dataclass(frozen=True)
class Claim:
    invoice_id: int
    account_id: int
    number: int  # the attempt's number on this invoice: 1, 2, ...
    card_id: int
    reason: str
    request: ChargeRequest
    attempt_id: int = 0  # known once the pending attempt is written
    # The wall-clock lease the attempt was claimed with (written or taken over): the claimant's
    # mark, checked before the answer is recorded.
    lease: datetime | None = None



def ask_safely(call, idempotency_key: str) -> GatewayResult:
    """The gateway's answer; an exception (an adapter bug, a network error, the simulator's ledger
    down) is no answer: the charge may have happened, so the attempt is unknown, for the janitor.
    Logged on one line: a network that is down fails every call of a slice alike, and a traceback
    each would bury the one line that says what happened (bench/chaos.py counted them)."""
    try:
        return call()
    except Exception as error:
        said = str(error).strip().splitlines()[0] if str(error).strip() else ""
        log.error("gateway call failed without an answer", idempotency_key=idempotency_key,
                  error=f"{type(error).__name__}: {said}"[:300])
        return GatewayResult(Outcome.UNKNOWN)


def still_claimed(conn: Connection, claims: list[Claim]) -> set[int]:
    """The claims' attempts that are still pending under the lease they were claimed with, locked
    to the end of the transaction. A lease that ran out while its process waited for the gateway
    lets a janitor take the attempt over (a lease of its own) and settle it: the answer is then
    the janitor's to record, once, and no longer this process's."""
    if not claims:
        return set()
    query = select(payment_attempts.c.id, payment_attempts.c.lease_expires_at).where(
        among(conn, payment_attempts.c.id, [claim.attempt_id for claim in claims]),
        payment_attempts.c.status == AttemptStatus.PENDING.value)
    query = hold_until_commit(query, conn, key_share=True)  # a retry's key on the attempt may still be written
    leases = dict(conn.execute(query).all())
    return {claim.attempt_id for claim in claims if leases.get(claim.attempt_id) == claim.lease}


def settle_attempts(conn: Connection, app: Ports, answered: list[tuple[Claim, GatewayResult]],
                    as_of: datetime) -> list[tuple[Claim, GatewayResult]]:
    """Record the gateway's answers: attempts settled, invoices paid, then what that means for
    dunning (recovery R8.6/R11, a step's notice, the owner's card-retry notice), events in the outbox.
    Only the attempts still claimed by their caller are settled; returns them with their answers."""
    if not answered:
        return []
    lock_accounts(conn, {claim.account_id for claim, _ in answered})  # first, as the sweep takes them
    ours = still_claimed(conn, [claim for claim, _ in answered])
    answered = [(claim, result) for claim, result in answered if claim.attempt_id in ours]
    if not answered:
        return []
    account_ids = {claim.account_id for claim, _ in answered}
    unknown = Outcome.UNKNOWN.value  # the attempt's status is the outcome's (unknown too: not settled)
    update_rows(conn, payment_attempts, [{
        "id": claim.attempt_id, "status": result.outcome.value, "decline_code": result.decline_code,
        "charge": result.reference, "settled_at": as_of if result.outcome.value != unknown else None,
    } for claim, result in answered])
    paid = [claim for claim, result in answered if result.outcome == Outcome.SUCCEEDED]
    update_rows(conn, invoices, [{"id": claim.invoice_id, "status": InvoiceStatus.PAID.value,
                                  "status_changed_at": as_of} for claim in paid])
    writer.write_many(conn, [writer.event(
        as_of, f"payment.{result.outcome.value}", claim.account_id,
        {"invoice_id": claim.invoice_id, "attempt_id": claim.attempt_id, "amount": claim.request.amount,
         "currency": claim.request.currency, "decline_code": result.decline_code},
    ) for claim, result in answered if result.outcome != Outcome.UNKNOWN])
    # What the answers mean for dunning (above payments: the port bootstrap wired), in this transaction.
    app.settlement.after_charges(conn, app, account_ids=account_ids,
                                 paid_invoice_ids=[claim.invoice_id for claim in paid],
                                 answered_attempt_ids=[claim.attempt_id for claim, result in answered
                                                       if result.outcome != Outcome.UNKNOWN], as_of=as_of)
    return answered
