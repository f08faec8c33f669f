"""The payment batch (R5.3, R7.1): charge open invoices, crash-safe and exactly once.

For each slice: claim chargeable invoices and commit one `pending` attempt per invoice, with
its own idempotency key, before any gateway call; call the gateway concurrently under the rate
cap; then settle the attempts, the invoices paid, and the outbox, in one transaction.
An invoice is chargeable when it is open, its account has a card, no attempt on it is
unsettled, and either it was never attempted or a retry was requested since (R7.1: a card
update asks for one). A partial unique index refuses a second unsettled attempt on an invoice,
so two collectors at once never charge it twice.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.bulk import among, among_texts, insert_rows
from renewly.adapters.db.locks import claim_unheld
from renewly.adapters.db.tables import (
    accounts,
    cards,
    gateway_customers,
    invoices,
    payment_attempts,
    payment_retries,
    reactivations,
)
from renewly.adapters.logs import get_logger
from renewly.batches.reports import Reported
from renewly.billing.issuing import amount_due
from renewly.billing.rules.invoices import InvoiceKind, InvoiceStatus
from renewly.payments.attempts import Claim, ask_safely, settle_attempts
from renewly.payments.janitor import settle_unsettled_attempts
from renewly.payments.rate_limit import GatewayCalls, RateCap, gateway_rate_cap
from renewly.payments.rules.charges import UNSETTLED, AttemptStatus, ChargeRequest, GatewayResult, Outcome, attempt_key
from renewly.ports import Ports
from renewly.shared.money import Money

log = get_logger(__name__)


@dataclass
class CollectReport(Reported):
    attempted: int = 0
    succeeded: int = 0
    declined: int = 0
    unknown: int = 0
    settled_by_janitor: int = 0
    collected: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    @property
    def did_anything(self) -> bool:
        return bool(self.attempted or self.settled_by_janitor)

    def describe(self) -> str:
        collected = ", ".join(Money(amount, currency).format("en")
                              for currency, amount in sorted(self.collected.items()))
        return (f"{self.attempted} charge(s): {self.succeeded} succeeded, {self.declined} declined, "
                f"{self.unknown} without answer; {self.settled_by_janitor} earlier attempt(s) settled"
                + (f"; collected {collected}" if collected else ""))


def collect_due(app: Ports, as_of: datetime, *, bucket: RateCap | None = None, on_slice=None) -> CollectReport:
    settings = app.settings.payments
    report = CollectReport()
    bucket = bucket or gateway_rate_cap(app)
    report.settled_by_janitor = settle_unsettled_attempts(app, as_of, bucket=bucket)
    def charge(claim: Claim) -> GatewayResult:
        return _charge(app, claim.request)

    with GatewayCalls(charge, concurrency=settings.concurrency, bucket=bucket) as calls:
        # The next slice is claimed (its pending attempts committed) and queued while the previous
        # one is still at the gateway, then the previous one is settled: the gateway is never idle
        # between slices, and at most two slices are in flight.
        in_flight: tuple[list[Claim], list[Future[GatewayResult]]] | None = None
        while True:
            # Asked to stop: no new slice; the one at the gateway is settled, its answers recorded.
            claims = [] if app.stop.asked else claim_slice(app, as_of, settings.slice_size)
            queued = (claims, calls.submit(claims))
            if in_flight:
                _settle(app, as_of, *in_flight, report, on_slice)
            if not claims:
                break
            in_flight = queued
    return report


def _settle(app: Ports, as_of: datetime, claims: list[Claim], calls: list[Future[GatewayResult]],
            report: CollectReport, on_slice) -> None:
    results = [call.result() for call in calls]
    with app.engine.begin() as conn:
        settle_attempts(conn, app, list(zip(claims, results)), as_of)
    for claim, result in zip(claims, results):
        report.attempted += 1
        if result.outcome == Outcome.SUCCEEDED:
            report.succeeded += 1
            currency = claim.request.currency
            report.collected[currency] = report.collected.get(currency, 0) + claim.request.amount
        elif result.outcome == Outcome.DECLINED:
            report.declined += 1
        else:
            report.unknown += 1
    if on_slice:
        on_slice(len(claims))


def _charge(app: Ports, request: ChargeRequest) -> GatewayResult:
    return ask_safely(lambda: app.gateway.charge(request), request.idempotency_key)


def chargeable_invoices():
    """Open invoices to charge now: never attempted, or asked for again (a dunning step, a card
    update), with no attempt still unanswered. A cancelled account is charged only through a
    temporary reactivation (R9.2): for a retry its owner asked for during the window."""
    unsettled = exists().where(payment_attempts.c.invoice_id == invoices.c.id,
                               payment_attempts.c.status.in_([s.value for s in UNSETTLED]))
    attempted = exists().where(payment_attempts.c.invoice_id == invoices.c.id)
    retry_requested = exists().where(payment_retries.c.invoice_id == invoices.c.id,
                                     payment_retries.c.attempt_id.is_(None))
    # Asked for while a window was open, charged even if it has ended since: the owner did in time
    # what the banner said (the card update at 23:30 on its last day is charged by the next batch).
    # One EXISTS over both tables, not one inside the other: SQLAlchemy correlates a subquery
    # to the query just around it only, so an inner EXISTS naming `invoices` read invoices of
    # its own, and any account's window let a cancelled account's retry be charged.
    asked_in_window = exists().where(
        payment_retries.c.invoice_id == invoices.c.id, payment_retries.c.attempt_id.is_(None),
        reactivations.c.account_id == invoices.c.account_id,
        reactivations.c.granted_at <= payment_retries.c.requested_at,
        payment_retries.c.requested_at < reactivations.c.ends_at)
    return and_(invoices.c.status == InvoiceStatus.OPEN.value, invoices.c.kind == InvoiceKind.INVOICE.value,
                ~unsettled, or_(and_(accounts.c.status.in_(("active", "past_due")), or_(~attempted, retry_requested)),
                                and_(accounts.c.status == "cancelled", asked_in_window)))


# How many times a claim reads again when other collectors took every invoice it read (see
# `_not_taken_meanwhile`); a fresh read no longer finds those, so a second one nearly always does.
CLAIM_READS = 10


def claim_slice(app: Ports, as_of: datetime, limit: int) -> list[Claim]:
    """Commit a pending attempt for each of up to `limit` chargeable invoices; returns what to
    charge: nothing once no invoice is left to charge (the batch ends there)."""
    for _ in range(CLAIM_READS):
        read, claims = _claim_once(app, as_of, limit)
        # Every invoice read was taken by other collectors meanwhile: not the end of the work
        # (with four `renewly run` at once, one ended its batch on its first slice, having
        # charged nothing while the others had thousands of invoices left).
        if claims or not read:
            return claims
    return []


def _claim_once(app: Ports, as_of: datetime, limit: int) -> tuple[int, list[Claim]]:
    """How many chargeable invoices the claim read, and those it could claim."""
    lease = wall_clock() + timedelta(seconds=app.settings.payments.lease_seconds)
    attempts_so_far = select(func.count()).where(payment_attempts.c.invoice_id == invoices.c.id).scalar_subquery()
    retried = exists().where(payment_retries.c.invoice_id == invoices.c.id, payment_retries.c.attempt_id.is_(None))
    query = (select(invoices.c.id, invoices.c.account_id, invoices.c.currency, invoices.c.number,
                    amount_due().label("due"), attempts_so_far.label("attempts"), retried.label("retried"),
                    cards.c.id.label("card_id"), cards.c.token, gateway_customers.c.customer)
             .join(accounts, accounts.c.id == invoices.c.account_id)
             .join(cards, and_(cards.c.account_id == invoices.c.account_id, cards.c.status == "active"))
             .join(gateway_customers, gateway_customers.c.account_id == invoices.c.account_id)
             .where(chargeable_invoices(), invoices.c.issued_at <= as_of)
             .order_by(invoices.c.id).limit(limit))
    with app.engine.begin() as conn:
        query = claim_unheld(query, conn, of=invoices)
        read = [Claim(
            invoice_id=row.id, account_id=row.account_id, number=row.attempts + 1, card_id=row.card_id,
            reason="retry" if row.retried else "issued", lease=lease,
            request=ChargeRequest(customer=row.customer, card_token=row.token, amount=int(row.due),
                                  currency=row.currency, idempotency_key=attempt_key(row.id, row.attempts + 1),
                                  description=f"Invoice {row.number}"))
            for row in conn.execute(query) if row.due > 0]
        claims = _not_taken_meanwhile(conn, read)
        claims = _write_pending(conn, claims, as_of, lease, app.leases.worker_id)
        # The attempt fulfils every request open on its invoice: a step's and a card update's
        # asked at once make one charge. (A request made after this claim waits for the invoice's
        # row lock, so it is left for the next batch, with the card it was made for.)
        retried_ids = [claim.invoice_id for claim in claims if claim.reason == "retry"]
        if retried_ids:
            # The invoice's one unanswered attempt is the one just written (a unique index says so).
            pending = (select(payment_attempts.c.id)
                       .where(payment_attempts.c.invoice_id == payment_retries.c.invoice_id,
                              payment_attempts.c.status == AttemptStatus.PENDING.value).scalar_subquery())
            conn.execute(payment_retries.update().where(among(conn, payment_retries.c.invoice_id, retried_ids),
                                                        payment_retries.c.attempt_id.is_(None))
                         .values(attempt_id=pending))
    return len(read), claims


def _not_taken_meanwhile(conn: Connection, claims: list[Claim]) -> list[Claim]:
    """The claims whose attempt no other collector wrote between our query's snapshot and our lock.

    READ COMMITTED does not look at a row again when another transaction only locked it: an
    invoice another collector claimed and committed its attempt for while our query ran is ours
    to lock, as if still chargeable. Inserting our attempt anyway would wait on that collector's
    row (the unique key) while it settles the invoice, and its settle waits on our lock: a deadlock
    (seen with four `renewly run` at once, bench/scaleout.py). This statement's fresh snapshot sees
    that attempt, and such an invoice is left alone."""
    if not claims:
        return claims
    keys = [claim.request.idempotency_key for claim in claims]
    taken = set(conn.execute(select(payment_attempts.c.idempotency_key)
                             .where(among_texts(conn, payment_attempts.c.idempotency_key, keys))).scalars())
    return [claim for claim in claims if claim.request.idempotency_key not in taken]


def _write_pending(conn: Connection, claims: list[Claim], as_of: datetime, lease: datetime,
                   worker_id: int | None) -> list[Claim]:
    """Insert the pending attempts, under `lease` and the queue worker's id if one claims them;
    returns the claims that got in, with their attempt ids."""
    rows = [{"invoice_id": c.invoice_id, "account_id": c.account_id, "number": c.number,
             "idempotency_key": c.request.idempotency_key, "card_id": c.card_id, "amount": c.request.amount,
             "currency": c.request.currency, "status": AttemptStatus.PENDING.value, "reason": c.reason,
             "created_at": as_of, "lease_expires_at": lease, "worker_id": worker_id} for c in claims]
    if not rows:
        return []
    try:
        with conn.begin_nested():
            insert_rows(conn, payment_attempts, rows)
    except IntegrityError:
        # Another collector took some of these invoices between our read and our write (READ
        # COMMITTED allows it): the unique indexes refused them; keep the others, one by one.
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(payment_attempts.insert().values(**row))
            except IntegrityError:
                continue
    ours = dict(conn.execute(select(payment_attempts.c.idempotency_key, payment_attempts.c.id).where(
        payment_attempts.c.idempotency_key.in_([row["idempotency_key"] for row in rows]),
        payment_attempts.c.status == AttemptStatus.PENDING.value,
        payment_attempts.c.lease_expires_at == lease)).all())
    return [replace(c, attempt_id=ours[c.request.idempotency_key]) for c in claims
            if c.request.idempotency_key in ours]


def next_collect_at(conn: Connection) -> datetime | None:
    """When the payment batch next has work: the earliest chargeable invoice or unsettled attempt.
    An invoice already attempted is chargeable again from its retry's request (a card update at
    10:30 is charged at the 11:00 tick, never dated at 10:00, before the card existed); one never
    attempted, from its issue."""
    attempted = exists().where(payment_attempts.c.invoice_id == invoices.c.id)
    asked_at = (select(func.min(payment_retries.c.requested_at))
                .where(payment_retries.c.invoice_id == invoices.c.id, payment_retries.c.attempt_id.is_(None))
                .scalar_subquery())
    chargeable_from = case((attempted, func.coalesce(asked_at, invoices.c.issued_at)), else_=invoices.c.issued_at)
    query = (select(func.min(chargeable_from, type_=invoices.c.issued_at.type)).select_from(invoices)
             .join(accounts, accounts.c.id == invoices.c.account_id)
             .where(chargeable_invoices(),
                    exists().where(cards.c.account_id == invoices.c.account_id, cards.c.status == "active")))
    first_invoice = conn.execute(query).scalar()
    first_unsettled = conn.execute(select(func.min(payment_attempts.c.created_at))
                                   .where(payment_attempts.c.status.in_([s.value for s in UNSETTLED]))).scalar()
    moments = [m for m in (first_invoice, first_unsettled) if m is not None]
    return min(moments) if moments else None

