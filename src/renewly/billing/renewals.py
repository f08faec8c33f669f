"""The renewal batch: every subscription due gets exactly one invoice per period, and moves on.

Work is claimed in slices (`FOR UPDATE SKIP LOCKED` on PostgreSQL), each slice decided by the
pure domain and written in bulk in one transaction. Several processes may run it at once; the
row locks, the series lock and the (subscription, period) unique index keep it exactly-once and
gapless. A subscription several periods behind gets one invoice per missed period, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, tuple_

from renewly.adapters.db.bulk import among, insert_rows, update_rows
from renewly.adapters.db.locks import claim_unheld
from renewly.adapters.db.tables import accounts, pending_items, plans, subscriptions
from renewly.batches.parking import Subject, is_infrastructure, not_parked, one_by_one
from renewly.batches.reports import Reported, parked_note
from renewly.batches.slices import WORKERS, run_slices
from renewly.billing.issuing import store_documents
from renewly.billing.rules.invoices import (
    LineKind,
    PendingItem,
    Renewal,
    RenewalSnapshot,
    describe_credit_brought_forward,
    draft_renewal,
)
from renewly.outbox.emails import InvoiceMail, addressees
from renewly.outbox.rendering import templates_of
from renewly.ports import Ports


@dataclass(frozen=True)
class RenewalReport(Reported):
    invoices_issued: int
    subscriptions_renewed: int
    as_of: datetime
    parked: int = 0  # subscriptions whose invoice could not be issued: left aside, with the reason

    @property
    def did_anything(self) -> bool:
        return bool(self.invoices_issued)

    def describe(self) -> str:
        return (f"{self.invoices_issued} invoice(s) issued for {self.subscriptions_renewed} subscription(s)"
                + parked_note(self))


def renew_due(app: Ports, as_of: datetime, *, slice_size: int | None = None, on_slice=None,
              workers: int = WORKERS) -> RenewalReport:
    """Issue every renewal invoice due at `as_of`, slice after slice, until nothing is claimable."""
    size = slice_size or app.settings.batches.chunk_size
    done = run_slices(app, lambda: _renew_slices(app, as_of, size, on_slice), workers)
    return RenewalReport(invoices_issued=sum(issued for issued, _, _ in done),
                         subscriptions_renewed=sum(renewed for _, renewed, _ in done), as_of=as_of,
                         parked=sum(parked for _, _, parked in done))


def _renew_slices(app: Ports, as_of: datetime, size: int, on_slice) -> tuple[int, int, int]:
    """One worker's loop: (invoices issued, subscriptions renewed, subscriptions parked)."""
    issued = renewed = parked = 0
    after: Position | None = None
    while not app.stop.asked:  # asked to stop: the slices done stay done, the rest stays due
        claimed = False
        try:
            with app.engine.begin() as conn:
                snapshots, last = claim_due(conn, as_of, size, after=after)
                claimed = True
                if snapshots:
                    renewals = issue_renewals(conn, app, snapshots, as_of)
        except Exception as error:
            if is_infrastructure(error):
                raise
            # One subscription made the slice fail: the slice again, one at a time, parking it.
            with app.engine.connect() as conn:
                snapshots, last = claim_due(conn, as_of, size, after=after, lock=False)
            if not snapshots and not claimed:
                raise  # the claim itself failed: no subscription's fault, and trying again loops
            if not snapshots:
                # Another worker of the batch met the same rows once this slice let go of them, and
                # parked the one at fault and renewed the others meanwhile: nothing left here.
                continue
            count, worked, parked_now = one_by_one(
                app, "renew", "subscription", [Subject(s.subscription_id, s.account_id) for s in snapshots],
                lambda conn, subscription_id: renew_subscription_now(conn, app, subscription_id, as_of), as_of)
            # Each that issued has had all its due periods invoiced: renewed past as_of.
            issued, renewed, parked = issued + count, renewed + worked, parked + parked_now
            after = last
            continue
        if not snapshots:
            if after is None:
                break
            # One more pass from the start: rows another worker held (and maybe gave back) are free now.
            after = None
            continue
        # The next slice starts past this one, so the index entries of the rows just renewed are not
        # walked again: each claim costs the same at the end of a million renewals as at the start.
        # A subscription several periods behind is met again further on, at its new renews_at.
        after = last
        issued += len(renewals)
        # A subscription counts once, in the slice that moves it past `as_of` (no set of ids that
        # grows with the batch: memory stays flat however many subscriptions renew).
        renewed += sum(1 for renewal in renewals if renewal.next_renewal_at > as_of)
        if on_slice:
            on_slice(len(snapshots))
    return issued, renewed, parked


def renew_subscription_now(conn: Connection, app: Ports, subscription_id: int, as_of: datetime, *,
                           catch_up: int = 0) -> int:
    """Invoice one subscription's due periods inside the caller's transaction (a new subscription):
    the first `catch_up` of them in one invoice (a backdated start), the others one by one."""
    total = 0
    if catch_up > 1 and (snapshots := claim_due(conn, as_of, 1, subscription_id=subscription_id)[0]):
        total += len(issue_renewals(conn, app, snapshots, as_of, periods=catch_up))
    while snapshots := claim_due(conn, as_of, 1, subscription_id=subscription_id)[0]:
        total += len(issue_renewals(conn, app, snapshots, as_of))
    return total


def due_query():
    return ((subscriptions.c.status == "active") & (accounts.c.status.in_(("active", "past_due")))
            & not_parked("subscription", subscriptions.c.id))


Position = tuple[datetime, int]  # (renews_at, id) of a subscription: where a slice ends


def claim_due(conn: Connection, as_of: datetime, limit: int, *, subscription_id: int | None = None,
              after: Position | None = None, lock: bool = True) -> tuple[list[RenewalSnapshot], Position | None]:
    """Lock and read up to `limit` due subscriptions, earliest due first (past `after` if given).

    Returns their snapshots and the position of the last one.
    """
    query = (
        select(subscriptions.c.id, subscriptions.c.account_id, accounts.c.locale, accounts.c.timezone,
               plans.c.currency, accounts.c.buyer_name, accounts.c.buyer_line1, accounts.c.buyer_line2,
               accounts.c.buyer_postcode, accounts.c.buyer_city, accounts.c.buyer_country, accounts.c.buyer_vat_id,
               plans.c.name, plans.c.interval, plans.c.unit_amount, subscriptions.c.seats,
               subscriptions.c.anchor_date, subscriptions.c.periods_invoiced, subscriptions.c.renews_at)
        .join(plans, plans.c.id == subscriptions.c.plan_id)
        .join(accounts, accounts.c.id == subscriptions.c.account_id)
        .where(due_query(), subscriptions.c.renews_at <= as_of)
        # Along the due index (renews_at, id): a slice reads its own rows, not the whole table.
        .order_by(subscriptions.c.renews_at, subscriptions.c.id).limit(limit))
    if subscription_id is not None:
        query = query.where(subscriptions.c.id == subscription_id)
    if after is not None:
        query = query.where(tuple_(subscriptions.c.renews_at, subscriptions.c.id) > tuple_(*after))
    if lock:
        query = claim_unheld(query, conn, of=subscriptions)
    rows = conn.execute(query).all()
    if not rows:
        return [], None
    items = _open_items(conn, [row[0] for row in rows])
    no_items = ()
    snapshots = [RenewalSnapshot(
        subscription_id=sub_id, account_id=account_id, locale=locale, timezone=zone, currency=currency,
        buyer={"name": name, "line1": line1, "line2": line2, "postcode": postcode, "city": city,
               "country": country, "vat_id": vat_id},
        plan_name=plan_name, interval=interval, unit_amount=unit_amount, seats=seats, anchor_date=anchor_date,
        period_index=period_index, pending_items=items.get(sub_id, no_items))
        for (sub_id, account_id, locale, zone, currency, name, line1, line2, postcode, city, country, vat_id,
             plan_name, interval, unit_amount, seats, anchor_date, period_index, _renews_at) in rows]
    return snapshots, (rows[-1].renews_at, rows[-1].id)


def _open_items(conn: Connection, subscription_ids: Sequence[int]) -> dict[int, tuple[PendingItem, ...]]:
    if not subscription_ids:
        return {}
    rows = conn.execute(select(pending_items).where(among(conn, pending_items.c.subscription_id, subscription_ids),
                                                   pending_items.c.invoice_id.is_(None))
                        .order_by(pending_items.c.id))
    found: dict[int, list[PendingItem]] = defaultdict(list)
    for row in rows:
        found[row.subscription_id].append(PendingItem(id=row.id, kind=row.kind, description=row.description,
                                                      amount=row.amount, period_start=row.period_start,
                                                      period_end=row.period_end))
    return {subscription_id: tuple(items) for subscription_id, items in found.items()}


def issue_renewals(conn: Connection, app: Ports, snapshots: Sequence[RenewalSnapshot], as_of: datetime,
                   periods: int = 1) -> list[Renewal]:
    issue_date = as_of.astimezone(app.seller_zone).date()
    taxes, seller = app.taxes, app.seller  # one seller document per slice, stored once per invoice
    renewals = [draft_renewal(snapshot, issue_date, taxes, seller, periods) for snapshot in snapshots]
    # Before the invoices: storing them takes the series lock, held to the commit (see store_documents).
    update_rows(conn, subscriptions, [{
        "id": renewal.invoice.subscription_id, "periods_invoiced": renewal.next_period_index,
        "current_period_start": renewal.invoice.period_start, "current_period_end": renewal.next_period_start,
        "renews_at": renewal.next_renewal_at,
    } for renewal in renewals], binary=True)
    insert_rows(conn, pending_items, [{
        "subscription_id": renewal.invoice.subscription_id, "kind": str(LineKind.CREDIT_BROUGHT),
        "description": describe_credit_brought_forward(renewal.invoice.locale),
        "amount": -renewal.invoice.credit_carried_forward, "currency": renewal.invoice.currency,
        "period_start": None, "period_end": None, "created_at": as_of, "invoice_id": None,
    } for renewal in renewals if renewal.invoice.credit_carried_forward])
    # Who each invoice is e-mailed to (R4.3): one query for the slice, before the series lock.
    send = InvoiceMail(templates_of(app), app.settings.seller.support_email,
                       addressees(conn, {renewal.invoice.account_id for renewal in renewals}))
    invoice_ids = store_documents(conn, [renewal.invoice for renewal in renewals], issued_at=as_of, send=send)
    # The items an invoice consumed point at it, so they follow it (still under the series lock, but rare).
    update_rows(conn, pending_items, [{"id": item_id, "invoice_id": invoice_id}
                                      for renewal, invoice_id in zip(renewals, invoice_ids)
                                      for item_id in renewal.invoice.consumed_item_ids])
    return renewals


def next_renewal_at(conn: Connection) -> datetime | None:
    """When the renewal batch next has work: the scheduler skips the idle runs before it."""
    return conn.execute(select(func.min(subscriptions.c.renews_at)).join(accounts).where(due_query())).scalar()


