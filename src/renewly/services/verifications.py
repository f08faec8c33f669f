"""The void batch (R5.2): release every card-check authorization once its delay has passed.

It first settles checks left without an answer (the process died, or the gateway timed out):
what the gateway holds under such a key is voided at once, since its card was never saved.
Run every `void_interval_minutes`, no authorization stays open past the delay plus one interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from renewly.adapters.db.bulk import update_rows
from renewly.adapters.db.tables import card_verifications
from renewly.bootstrap import App
from renewly.domain.payments import Outcome, verification_key
from renewly.services.attempts import wall_clock
from renewly.services.payment_rate import TokenBucket, call_concurrently


@dataclass
class VoidReport:
    voided: int = 0
    settled: int = 0
    failed: int = 0  # the gateway did not answer; the next run tries again

    @property
    def did_anything(self) -> bool:
        return bool(self.voided or self.settled)


def void_due_verifications(app: App, as_of: datetime) -> VoidReport:
    report = VoidReport()
    bucket = TokenBucket(app.settings.payments.rate_limit_per_second)
    concurrency = app.settings.payments.concurrency
    with app.engine.connect() as conn:
        unsettled = conn.execute(select(card_verifications).where(or_(
            card_verifications.c.status == "unknown",
            and_(card_verifications.c.status == "pending", card_verifications.c.lease_expires_at < wall_clock()),
        ))).all()
    answers = call_concurrently(lambda row: app.gateway.find(verification_key(row.id)), unsettled,
                                concurrency=concurrency, bucket=bucket)
    updates = []
    for row, answer in zip(unsettled, answers):
        if answer is None:
            updates.append({"id": row.id, "status": "not_sent", "authorization_ref": None})
        elif answer.outcome == Outcome.SUCCEEDED:
            updates.append({"id": row.id, "status": "held", "authorization_ref": answer.reference})
        elif answer.outcome == Outcome.DECLINED:
            updates.append({"id": row.id, "status": "declined", "authorization_ref": None})
    with app.engine.begin() as conn:
        update_rows(conn, card_verifications, updates)
    report.settled = len(updates)
    # Settled holds of cards never saved are voided now; saved cards' holds when their delay is up.
    orphaned = {update["id"] for update in updates if update["status"] == "held"}

    with app.engine.connect() as conn:
        due = conn.execute(select(card_verifications.c.id, card_verifications.c.authorization_ref).where(
            card_verifications.c.status == "held",
            or_(card_verifications.c.void_due_at <= as_of, card_verifications.c.id.in_(orphaned)),
        ).order_by(card_verifications.c.id)).all()
    results = call_concurrently(lambda row: app.gateway.void(row.authorization_ref,
                                                             f"{verification_key(row.id)}-void"),
                                due, concurrency=concurrency, bucket=bucket)
    voided = [row.id for row, result in zip(due, results) if result.outcome == Outcome.SUCCEEDED]
    with app.engine.begin() as conn:
        update_rows(conn, card_verifications, [{"id": vid, "status": "voided", "voided_at": as_of} for vid in voided])
    report.voided, report.failed = len(voided), len(due) - len(voided)
    return report


def next_void_at(conn) -> datetime | None:
    due = conn.execute(select(func.min(card_verifications.c.void_due_at))
                       .where(card_verifications.c.status == "held")).scalar()
    unsettled = conn.execute(select(func.min(card_verifications.c.created_at))
                             .where(card_verifications.c.status.in_(("pending", "unknown")))).scalar()
    moments = [m for m in (due, unsettled) if m is not None]
    return min(moments) if moments else None
