"""The janitor: settles attempts left without an answer before any new attempt on their invoice.

An attempt is unsettled when its call timed out or failed ambiguously (`unknown`), or when the
process that made it died before writing the answer (`pending` past its lease). While the
invoice is open, the janitor sends the same request again with the same idempotency key: the
gateway answers with what it did the first time, or does it now, exactly once either way.
On an invoice no longer open, or of an account cancelled since the attempt (only what was asked
during a temporary reactivation may be charged then), it only asks; a key the gateway never saw
is `not_sent`.
Janitors at once (a payment batch in each of several processes) share the work: each first
claims the attempts it will ask about (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one
writer) and marks them pending under a lease of its own, so that no lock is held while the
gateway answers, and records an answer only if the attempt is still its own: one answer, one
payment event, whoever asked.
Kill Bill issue 1015 paid an invoice twice by charging anew over an unknown attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, exists, or_, select

from renewly.accounts.accounts import lock_accounts
from renewly.adapters.clock import wall_clock
from renewly.adapters.db.bulk import among, update_rows
from renewly.adapters.db.locks import claim_unheld, held_by_a_dead_worker
from renewly.adapters.db.tables import accounts, cards, gateway_customers, invoices, payment_attempts, reactivations
from renewly.billing.rules.invoices import InvoiceStatus
from renewly.payments.attempts import Claim, ask_safely, settle_attempts, still_claimed
from renewly.payments.rate_limit import RateCap, call_concurrently, gateway_rate_cap
from renewly.payments.rules.charges import AttemptStatus, ChargeRequest, GatewayResult, Outcome
from renewly.ports import Ports

NEVER_SENT = GatewayResult(Outcome.UNKNOWN)  # find's None, told apart from a failed question


def settle_unsettled_attempts(app: Ports, as_of: datetime, *, bucket: RateCap | None = None) -> int:
    """Settle what can be settled; returns how many attempts got a definite answer.

    `bucket`: the rate cap to share with the batch that runs next (collect), so that the two
    together stay under it."""
    lease = wall_clock() + timedelta(seconds=app.settings.payments.lease_seconds)
    rows = _claim(app, lease)
    if not rows:
        return 0
    claims = [Claim(invoice_id=row.invoice_id, account_id=row.account_id, number=row.number, card_id=row.card_id,
                    reason=row.reason, attempt_id=row.id, lease=lease,
                    request=ChargeRequest(customer=row.customer or "", card_token=row.token, amount=row.amount,
                                          currency=row.currency, idempotency_key=row.idempotency_key,
                                          description=f"Invoice {row.invoice_number}"))
              for row in rows]
    still_open = {row.id for row in rows if row.invoice_status == InvoiceStatus.OPEN and row.customer}
    may_charge = {row.id for row in rows if row.id in still_open and row.chargeable_account}
    settings = app.settings.payments

    def ask(claim: Claim) -> GatewayResult | None:
        # An exception is no answer (unknown, asked again next time), never "not sent": the one
        # attempt that failed so must not stop the batch, nor let a new charge be made.
        key = claim.request.idempotency_key
        if claim.attempt_id in may_charge:
            return ask_safely(lambda: app.gateway.charge(claim.request), key)  # same key: once at most
        found = ask_safely(lambda: app.gateway.find(key) or NEVER_SENT, key)  # what it did, if anything
        return None if found is NEVER_SENT else found

    answers = call_concurrently(ask, claims, concurrency=settings.concurrency,
                                bucket=bucket or gateway_rate_cap(app))
    with app.engine.begin() as conn:
        lock_accounts(conn, {claim.account_id for claim in claims})  # first, as everyone takes them
        # Not an attempt another janitor took over since (our lease ran out): its answer is the other's.
        ours = still_claimed(conn, claims)
        outcomes = [(claim, answer) for claim, answer in zip(claims, answers) if claim.attempt_id in ours]
        answered = [(claim, answer) for claim, answer in outcomes
                    if answer is not None and answer.outcome != Outcome.UNKNOWN]
        settle_attempts(conn, app, [(c, a) for c, a in answered if c.attempt_id in still_open], as_of)
        # On a closed invoice, record what happened without reopening or paying it.
        update_rows(conn, payment_attempts, [{
            "id": claim.attempt_id, "status": AttemptStatus(answer.outcome.value).value,
            "decline_code": answer.decline_code, "charge": answer.reference, "settled_at": as_of,
        } for claim, answer in answered if claim.attempt_id not in still_open])
        # A key the gateway never saw was not sent; still no answer: unknown, for the next janitor.
        never_sent = [claim for claim, answer in outcomes if answer is None]
        update_rows(conn, payment_attempts, [
            {"id": claim.attempt_id, "status": AttemptStatus.NOT_SENT.value, "settled_at": as_of}
            for claim in never_sent] + [
            {"id": claim.attempt_id, "status": AttemptStatus.UNKNOWN.value, "settled_at": None}
            for claim, answer in outcomes if answer is not None and answer.outcome == Outcome.UNKNOWN])
    return len(answered) + len(never_sent)


def _claim(app: Ports, lease: datetime) -> Sequence[Row[*tuple[Any, ...]]]:
    """Take the unsettled attempts no one else is asking about, under `lease`: pending again, so
    that another janitor leaves them alone until the lease runs out or this process's worker is
    seen dead."""
    # A cancelled account is charged only for what was asked during a temporary reactivation (R9):
    # for any other attempt of its, the janitor only asks what became of it.
    chargeable_account = or_(accounts.c.status.in_(("active", "past_due")), exists().where(
        reactivations.c.account_id == payment_attempts.c.account_id,
        reactivations.c.granted_at <= payment_attempts.c.created_at,
        payment_attempts.c.created_at < reactivations.c.ends_at))
    # A pending attempt is its process's until its lease ends, unless that process was a queue
    # worker now taken for dead: its tick is run again then, and settles it at the tick's date.
    dead_claimant = held_by_a_dead_worker(app.engine, payment_attempts.c.worker_id,
                                          app.settings.worker.stalled_seconds)
    query = (select(payment_attempts, invoices.c.status.label("invoice_status"),
                    invoices.c.number.label("invoice_number"), cards.c.token, gateway_customers.c.customer,
                    chargeable_account.label("chargeable_account"))
             .join(invoices, invoices.c.id == payment_attempts.c.invoice_id)
             .join(accounts, accounts.c.id == payment_attempts.c.account_id)
             .join(cards, cards.c.id == payment_attempts.c.card_id)
             .join(gateway_customers, gateway_customers.c.account_id == payment_attempts.c.account_id, isouter=True)
             .where(or_(payment_attempts.c.status == AttemptStatus.UNKNOWN.value,
                        and_(payment_attempts.c.status == AttemptStatus.PENDING.value,
                             or_(payment_attempts.c.lease_expires_at < wall_clock(), dead_claimant))))
             .order_by(payment_attempts.c.id))
    with app.engine.begin() as conn:
        # Rows another janitor is claiming are its own; the status is read again under the lock.
        # NO KEY UPDATE: a retry's key on the attempt may still be written meanwhile.
        query = claim_unheld(query, conn, of=payment_attempts, key_share=True)
        rows = conn.execute(query).all()
        if rows:
            conn.execute(payment_attempts.update().where(among(conn, payment_attempts.c.id, [row.id for row in rows]))
                         .values(status=AttemptStatus.PENDING.value, lease_expires_at=lease,
                                 worker_id=app.leases.worker_id))
    return rows
