"""The janitor: settles attempts left without an answer before any new attempt on their invoice.

An attempt is unsettled when its call timed out or failed ambiguously (`unknown`), or when the
process that made it died before writing the answer (`pending` past its lease). While the
invoice is open, the janitor sends the same request again with the same idempotency key: the
gateway answers with what it did the first time, or does it now, exactly once either way.
On an invoice no longer open, or of an account cancelled since the attempt (only what was asked
during a temporary reactivation may be charged then), it only asks; a key the gateway never saw
is `not_sent`.
Kill Bill issue 1015 paid an invoice twice by charging anew over an unknown attempt.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, or_, select

from renewly.adapters.db.bulk import update_rows
from renewly.adapters.db.tables import accounts, cards, gateway_customers, invoices, payment_attempts, reactivations
from renewly.bootstrap import App
from renewly.domain.invoices import InvoiceStatus
from renewly.domain.payments import AttemptStatus, ChargeRequest, GatewayResult, Outcome
from renewly.services.attempts import Claim, settle_attempts, wall_clock
from renewly.services.payment_rate import TokenBucket, call_concurrently


def settle_unsettled_attempts(app: App, as_of: datetime, *, bucket: TokenBucket | None = None) -> int:
    """Settle what can be settled; returns how many attempts got a definite answer.

    `bucket`: the rate cap to share with the batch that runs next (collect), so that the two
    together stay under it."""
    # A cancelled account is charged only for what was asked during a temporary reactivation (R9):
    # for any other attempt of its, the janitor only asks what became of it.
    chargeable_account = or_(accounts.c.status.in_(("active", "past_due")), exists().where(
        reactivations.c.account_id == payment_attempts.c.account_id,
        reactivations.c.granted_at <= payment_attempts.c.created_at,
        payment_attempts.c.created_at < reactivations.c.ends_at))
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(payment_attempts, invoices.c.status.label("invoice_status"),
                   invoices.c.number.label("invoice_number"), cards.c.token, gateway_customers.c.customer,
                   chargeable_account.label("chargeable_account"))
            .join(invoices, invoices.c.id == payment_attempts.c.invoice_id)
            .join(accounts, accounts.c.id == payment_attempts.c.account_id)
            .join(cards, cards.c.id == payment_attempts.c.card_id)
            .join(gateway_customers, gateway_customers.c.account_id == payment_attempts.c.account_id, isouter=True)
            .where(or_(payment_attempts.c.status == AttemptStatus.UNKNOWN.value,
                       and_(payment_attempts.c.status == AttemptStatus.PENDING.value,
                            payment_attempts.c.lease_expires_at < wall_clock())))
            .order_by(payment_attempts.c.id)).all()
    if not rows:
        return 0
    claims = [Claim(invoice_id=row.invoice_id, account_id=row.account_id, number=row.number, card_id=row.card_id,
                    reason=row.reason, attempt_id=row.id,
                    request=ChargeRequest(customer=row.customer or "", card_token=row.token, amount=row.amount,
                                          currency=row.currency, idempotency_key=row.idempotency_key,
                                          description=f"Invoice {row.invoice_number}"))
              for row in rows]
    still_open = {row.id for row in rows if row.invoice_status == InvoiceStatus.OPEN and row.customer}
    may_charge = {row.id for row in rows if row.id in still_open and row.chargeable_account}
    settings = app.settings.payments

    def ask(claim: Claim) -> GatewayResult | None:
        if claim.attempt_id in may_charge:
            return app.gateway.charge(claim.request)  # same key: the first answer, or the charge, once
        return app.gateway.find(claim.request.idempotency_key)  # what it did, if anything; nothing now

    answers = call_concurrently(ask, claims, concurrency=settings.concurrency,
                                bucket=bucket or TokenBucket(settings.rate_limit_per_second))
    answered = [(claim, answer) for claim, answer in zip(claims, answers)
                if answer is not None and answer.outcome != Outcome.UNKNOWN]
    never_sent = [claim for claim, answer in zip(claims, answers) if answer is None]
    with app.engine.begin() as conn:
        settle_attempts(conn, app, [(c, a) for c, a in answered if c.attempt_id in still_open], as_of)
        # On a closed invoice, record what happened without reopening or paying it.
        update_rows(conn, payment_attempts, [{
            "id": claim.attempt_id, "status": AttemptStatus(answer.outcome.value).value,
            "decline_code": answer.decline_code, "charge": answer.reference, "settled_at": as_of,
        } for claim, answer in answered if claim.attempt_id not in still_open])
        update_rows(conn, payment_attempts, [{"id": claim.attempt_id, "status": AttemptStatus.NOT_SENT.value,
                                              "settled_at": as_of} for claim in never_sent])
    return len(answered) + len(never_sent)
