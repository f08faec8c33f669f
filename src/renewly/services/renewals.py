"""The renewal batch: every subscription due gets exactly one invoice per period, and moves on.

Work is claimed in slices (`FOR UPDATE SKIP LOCKED` on PostgreSQL), each slice decided by the
pure domain and written in bulk in one transaction. Several processes may run it at once; the
row locks, the series lock and the (subscription, period) unique index keep it exactly-once and
gapless. A subscription several periods behind gets one invoice per missed period, in order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import Connection, func, select

from renewly.adapters.db.bulk import insert_rows, is_postgres, update_rows
from renewly.adapters.db.tables import accounts, pending_items, plans, subscriptions
from renewly.bootstrap import App
from renewly.domain.invoices import (LineKind, PendingItem, RenewalSnapshot, describe_credit_brought_forward,
                                     draft_renewal)
from renewly.services.invoicing import store_documents


@dataclass(frozen=True)
class RenewalReport:
    invoices_issued: int
    subscriptions_renewed: int
    as_of: datetime


def renew_due(app: App, as_of: datetime, *, slice_size: int | None = None, on_slice=None) -> RenewalReport:
    """Issue every renewal invoice due at `as_of`, slice after slice, until nothing is claimable."""
    size = slice_size or app.settings.batches.chunk_size
    issued, renewed = 0, set()
    while True:
        with app.engine.begin() as conn:
            snapshots = claim_due(conn, as_of, size)
            if not snapshots:
                break
            issued += issue_renewals(conn, app, snapshots, as_of)
        renewed.update(snapshot.subscription_id for snapshot in snapshots)
        if on_slice:
            on_slice(len(snapshots))
    return RenewalReport(invoices_issued=issued, subscriptions_renewed=len(renewed), as_of=as_of)


def renew_subscription_now(conn: Connection, app: App, subscription_id: int, as_of: datetime) -> int:
    """Invoice one subscription's due periods inside the caller's transaction (a new subscription)."""
    total = 0
    while snapshots := claim_due(conn, as_of, 1, subscription_id=subscription_id):
        total += issue_renewals(conn, app, snapshots, as_of)
    return total


def due_query():
    return (subscriptions.c.status == "active") & (accounts.c.status.in_(("active", "past_due")))


def claim_due(conn: Connection, as_of: datetime, limit: int, *, subscription_id: int | None = None,
              ) -> list[RenewalSnapshot]:
    query = (
        select(subscriptions.c.id, subscriptions.c.account_id, subscriptions.c.seats, subscriptions.c.anchor_date,
               subscriptions.c.periods_invoiced, plans.c.name.label("plan_name"), plans.c.interval,
               plans.c.unit_amount, plans.c.currency, accounts.c.locale, accounts.c.timezone, accounts.c.buyer_name,
               accounts.c.buyer_line1, accounts.c.buyer_line2, accounts.c.buyer_postcode, accounts.c.buyer_city,
               accounts.c.buyer_country, accounts.c.buyer_vat_id)
        .join(plans, plans.c.id == subscriptions.c.plan_id)
        .join(accounts, accounts.c.id == subscriptions.c.account_id)
        .where(due_query(), subscriptions.c.renews_at <= as_of)
        .order_by(subscriptions.c.id).limit(limit))
    if subscription_id is not None:
        query = query.where(subscriptions.c.id == subscription_id)
    if is_postgres(conn):
        query = query.with_for_update(of=subscriptions, skip_locked=True)
    rows = conn.execute(query).all()
    items = _open_items(conn, [row.id for row in rows])
    return [RenewalSnapshot(
        subscription_id=row.id, account_id=row.account_id, locale=row.locale, timezone=row.timezone,
        currency=row.currency,
        buyer={"name": row.buyer_name, "line1": row.buyer_line1, "line2": row.buyer_line2,
               "postcode": row.buyer_postcode, "city": row.buyer_city, "country": row.buyer_country,
               "vat_id": row.buyer_vat_id},
        plan_name=row.plan_name, interval=row.interval, unit_amount=row.unit_amount, seats=row.seats,
        anchor_date=row.anchor_date, period_index=row.periods_invoiced,
        pending_items=tuple(items.get(row.id, ()))) for row in rows]


def _open_items(conn: Connection, subscription_ids: Sequence[int]) -> dict[int, list[PendingItem]]:
    if not subscription_ids:
        return {}
    rows = conn.execute(
        select(pending_items).where(pending_items.c.subscription_id.in_(subscription_ids),
                                    pending_items.c.invoice_id.is_(None)).order_by(pending_items.c.id))
    found: dict[int, list[PendingItem]] = defaultdict(list)
    for row in rows:
        found[row.subscription_id].append(PendingItem(id=row.id, kind=row.kind, description=row.description,
                                                      amount=row.amount, period_start=row.period_start,
                                                      period_end=row.period_end))
    return found


def issue_renewals(conn: Connection, app: App, snapshots: Sequence[RenewalSnapshot], as_of: datetime) -> int:
    issue_date = as_of.astimezone(app.seller_zone).date()
    renewals = [draft_renewal(snapshot, issue_date, app.taxes, app.seller) for snapshot in snapshots]
    invoice_ids = store_documents(conn, [renewal.invoice for renewal in renewals], issued_at=as_of)
    update_rows(conn, subscriptions, [{
        "id": renewal.invoice.subscription_id, "periods_invoiced": renewal.next_period_index,
        "current_period_start": renewal.invoice.period_start, "current_period_end": renewal.next_period_start,
        "renews_at": renewal.next_renewal_at,
    } for renewal in renewals])
    update_rows(conn, pending_items, [{"id": item_id, "invoice_id": invoice_id}
                                      for renewal, invoice_id in zip(renewals, invoice_ids)
                                      for item_id in renewal.invoice.consumed_item_ids])
    insert_rows(conn, pending_items, [{
        "subscription_id": renewal.invoice.subscription_id, "kind": str(LineKind.CREDIT_BROUGHT),
        "description": describe_credit_brought_forward(renewal.invoice.locale),
        "amount": -renewal.invoice.credit_carried_forward, "currency": renewal.invoice.currency,
        "period_start": None, "period_end": None, "created_at": as_of, "invoice_id": None,
    } for renewal in renewals if renewal.invoice.credit_carried_forward])
    return len(invoice_ids)


def next_renewal_at(conn: Connection) -> datetime | None:
    """When the renewal batch next has work: the scheduler skips the idle runs before it."""
    return conn.execute(select(func.min(subscriptions.c.renews_at)).join(accounts).where(due_query())).scalar()


