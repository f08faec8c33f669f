"""The void batch (R5.2): release every card-check authorization once its delay has passed.

It first settles checks left without an answer (the process died, or the gateway timed out):
what the gateway holds under such a key is voided at once, since its card was never saved.
Run every `void_interval_minutes`, no authorization stays open past the delay plus one interval.
Void batches at once (several `renewly run`) share the checks: each claims the ones it will ask
about (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one writer) and marks them pending under
a lease of its own before any gateway call, so that no lock is held while the gateway answers,
then writes only the answers about checks still its own: each check is voided once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.bulk import among, update_rows
from renewly.adapters.db.locks import claim_unheld, hold_until_commit
from renewly.adapters.db.tables import card_verifications
from renewly.batches.reports import Reported
from renewly.payments.rate_limit import call_concurrently, gateway_rate_cap
from renewly.payments.rules.charges import Outcome, verification_key
from renewly.ports import Ports


@dataclass
class VoidReport(Reported):
    voided: int = 0
    settled: int = 0
    failed: int = 0  # the gateway did not answer; the next run tries again

    @property
    def did_anything(self) -> bool:
        return bool(self.voided or self.settled)

    def describe(self) -> str:
        return f"{self.voided} card-check authorization(s) voided, {self.failed} to try again"


def void_due_verifications(app: Ports, as_of: datetime) -> VoidReport:
    report = VoidReport()
    payments = app.settings.payments
    bucket = gateway_rate_cap(app)
    lease = wall_clock() + timedelta(seconds=payments.lease_seconds)
    unsettled = _claim(app, or_(
        card_verifications.c.status == "unknown",
        and_(card_verifications.c.status == "pending", card_verifications.c.lease_expires_at < wall_clock()),
    ), lease)
    answers = call_concurrently(lambda row: app.gateway.find(verification_key(row.id)), unsettled,
                                concurrency=payments.concurrency, bucket=bucket)
    updates = []
    for row, answer in zip(unsettled, answers):
        if answer is None:
            updates.append({"id": row.id, "status": "not_sent", "authorization_ref": None})
        elif answer.outcome == Outcome.SUCCEEDED:
            updates.append({"id": row.id, "status": "held", "authorization_ref": answer.reference})
        elif answer.outcome == Outcome.DECLINED:
            updates.append({"id": row.id, "status": "declined", "authorization_ref": None})
        else:  # no answer yet: the next run asks again
            updates.append({"id": row.id, "status": "unknown", "authorization_ref": row.authorization_ref})
    with app.engine.begin() as conn:
        ours = _still_claimed(conn, [update["id"] for update in updates], lease)
        updates = [update for update in updates if update["id"] in ours]
        update_rows(conn, card_verifications, updates)
    report.settled = sum(update["status"] != "unknown" for update in updates)
    # Settled holds of cards never saved are voided now; saved cards' holds when their delay is up.
    orphaned = [update["id"] for update in updates if update["status"] == "held"]
    if app.stop.asked:  # the voids are the next slice: left for the next run
        return report

    due = _claim(app, and_(card_verifications.c.status == "held", or_(
        card_verifications.c.void_due_at <= as_of, card_verifications.c.id.in_(orphaned))), lease)
    results = call_concurrently(lambda row: app.gateway.void(row.authorization_ref,
                                                             f"{verification_key(row.id)}-void"),
                                due, concurrency=payments.concurrency, bucket=bucket)
    voided = {row.id for row, result in zip(due, results) if result.outcome == Outcome.SUCCEEDED}
    with app.engine.begin() as conn:
        ours = _still_claimed(conn, [row.id for row in due], lease)
        # The others held still, for the next run to try again.
        update_rows(conn, card_verifications, [
            {"id": row.id, "status": "voided" if row.id in voided else "held",
             "voided_at": as_of if row.id in voided else None} for row in due if row.id in ours])
    report.voided = len(voided & ours)
    report.failed = len(ours - voided)
    return report


def _claim(app: Ports, which, lease: datetime) -> Sequence[Row[*tuple[Any, ...]]]:
    """Take the checks `which` selects that nobody else is asking the gateway about: pending under
    `lease` until their answers are written, so that another void batch leaves them alone (and
    takes them over as checks without an answer if this process dies meanwhile)."""
    query = select(card_verifications).where(which).order_by(card_verifications.c.id)
    with app.engine.begin() as conn:
        query = claim_unheld(query, conn)  # what another batch claims is its own
        rows = conn.execute(query).all()
        if rows:
            claimed = among(conn, card_verifications.c.id, [row.id for row in rows])
            conn.execute(card_verifications.update().where(claimed).values(status="pending", lease_expires_at=lease))
    return rows


def _still_claimed(conn: Connection, ids: list[int], lease: datetime) -> set[int]:
    """The checks still pending under `lease`, locked to the end of the transaction: one whose
    lease ran out may have been taken over and answered by another batch."""
    if not ids:
        return set()
    query = select(card_verifications.c.id).where(among(conn, card_verifications.c.id, ids),
                                                  card_verifications.c.status == "pending",
                                                  card_verifications.c.lease_expires_at == lease)
    query = hold_until_commit(query, conn)
    return set(conn.execute(query).scalars())


def next_void_at(conn) -> datetime | None:
    due = conn.execute(select(func.min(card_verifications.c.void_due_at))
                       .where(card_verifications.c.status == "held")).scalar()
    unsettled = conn.execute(select(func.min(card_verifications.c.created_at))
                             .where(card_verifications.c.status.in_(("pending", "unknown")))).scalar()
    moments = [m for m in (due, unsettled) if m is not None]
    return min(moments) if moments else None
