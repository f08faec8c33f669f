"""Subscriptions: start one (its first invoice is issued at once when it starts today or earlier),
change its seats (the difference is prorated onto the next invoice), cancel it."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from renewly.accounts.accounts import _live_account
from renewly.adapters.clock import LATEST_TEST_CLOCK
from renewly.adapters.db.locks import hold_until_commit
from renewly.adapters.db.tables import pending_items, plans, subscriptions
from renewly.billing.plans import plan_by_code
from renewly.billing.renewals import renew_subscription_now
from renewly.billing.rules.invoices import LineKind, describe_proration, prorate_seat_change
from renewly.billing.rules.plans import validate_seats
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.calendar import local_date, local_midnight_utc, period_boundary
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound
from renewly.shared.money import Money


def create_subscription(app: Ports, account_id: int, *, plan_code: str, seats: int, start: date | None = None,
                        actor: str, backdate: bool = False) -> int:
    """A subscription from `start` (default: today in the account's time zone). A start more than
    one period ago is refused unless `backdate`: a typo (2016 for 2026) would bill ten years of
    invoices at once; backdated, the periods up to today make one catch-up invoice."""
    seats = validate_seats(seats)
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = _live_account(conn, account_id)
        if account.status != "active":
            raise NotAllowed(f"account {account_id} is {account.status}; it cannot start a subscription",
                             code="account_not_active")
        plan = plan_by_code(conn, plan_code)
        if plan.currency != account.currency:
            raise InvalidInput(f"plan {plan.code} is priced in {plan.currency} but account {account_id} pays in "
                               f"{account.currency}", code="currency_mismatch")
        today = local_date(now, account.timezone)
        start = start or today
        if start >= LATEST_TEST_CLOCK.date():
            # No clock reaches it: a typo (9999 for 2026) would never be invoiced, and its periods
            # leave the calendar.
            raise InvalidInput(f"--start {start} is past the last day Renewly bills "
                               f"({LATEST_TEST_CLOCK.date() - timedelta(days=1)})", code="start_too_far")
        elapsed = periods_begun(start, plan.interval, today)
        if elapsed >= MAX_CATCH_UP_PERIODS:
            # Counted no further: a start in year 1 made a catch-up of a century, then a monthly
            # invoice for each of the 1,900 years left (minutes, tens of thousands of invoices).
            raise InvalidInput(f"--start {start} is {MAX_CATCH_UP_PERIODS} periods ago or more: no catch-up "
                               "goes that far back", code="start_in_the_past")
        if elapsed > 2 and not backdate:
            raise InvalidInput(f"--start {start} is more than one {plan.interval} ago ({elapsed} periods would be "
                               f"invoiced at once); say --backdate to bill them in one catch-up invoice",
                               code="start_in_the_past")
        subscription_id = conn.execute(subscriptions.insert().values(
            account_id=account_id, plan_id=plan.id, seats=seats, status="active", anchor_date=start,
            periods_invoiced=0, renews_at=local_midnight_utc(start, account.timezone), created_at=now,
        ).returning(subscriptions.c.id)).scalar_one()
        audit(conn, now, actor, "subscription.created", "subscription", subscription_id,
              details={"account_id": account_id, "plan": plan.code, "seats": seats, "start": start.isoformat()})
        writer.write(conn, writer.event(now, "subscription.created", account_id,
                                        {"subscription_id": subscription_id}))
        renew_subscription_now(conn, app, subscription_id, now, catch_up=elapsed if backdate else 0)
    return subscription_id


# A century of months: the most a backdated start may catch up.
MAX_CATCH_UP_PERIODS = 1200


def periods_begun(start: date, interval: str, today: date) -> int:
    """How many periods of a subscription started on `start` have begun by `today` (counted up to
    MAX_CATCH_UP_PERIODS)."""
    begun = 0
    while begun < MAX_CATCH_UP_PERIODS and period_boundary(start, interval, begun) <= today:
        begun += 1
    return begun


def change_seats(app: Ports, subscription_id: int, *, seats: int, actor: str) -> Money:
    """Set the seat count from today; returns the prorated amount added to the next invoice (in
    the plan's currency; below zero, a credit)."""
    seats = validate_seats(seats)
    now = app.clock.now()
    with app.engine.begin() as conn:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        query = hold_until_commit(query, conn)  # the renewal batch must not invoice it halfway through
        subscription = conn.execute(query).first()
        if subscription is None:
            raise NotFound(f"no subscription {subscription_id}", code="unknown_subscription")
        if subscription.status != "active":
            raise NotAllowed(f"subscription {subscription_id} is {subscription.status}", code="subscription_inactive")
        account = _live_account(conn, subscription.account_id)
        plan = conn.execute(select(plans).where(plans.c.id == subscription.plan_id)).one()
        if seats == subscription.seats:
            raise InvalidInput(f"subscription {subscription_id} already has {seats} seat(s)", code="seats_unchanged")
        amount = 0
        if subscription.current_period_start is not None:
            today = local_date(now, account.timezone)
            amount = prorate_seat_change(plan.unit_amount, subscription.seats, seats, today,
                                         subscription.current_period_start, subscription.current_period_end)
            if amount:
                conn.execute(pending_items.insert().values(
                    subscription_id=subscription_id, kind=LineKind.PRORATION.value,
                    description=describe_proration(plan.name, subscription.seats, seats, today,
                                                   subscription.current_period_end, account.locale),
                    amount=amount, currency=plan.currency, period_start=today,
                    period_end=subscription.current_period_end, created_at=now))
        conn.execute(subscriptions.update().where(subscriptions.c.id == subscription_id).values(seats=seats))
        audit(conn, now, actor, "subscription.seats_changed", "subscription", subscription_id,
              details={"from": subscription.seats, "to": seats, "prorated": amount})
        writer.write(conn, writer.event(now, "subscription.updated", subscription.account_id,
                                        {"subscription_id": subscription_id, "seats": seats,
                                         "previous_seats": subscription.seats}))
    return Money(amount, plan.currency)


def cancel_subscription(app: Ports, subscription_id: int, *, actor: str) -> Money:
    """Stop a subscription now: it is never renewed nor invoiced again. The period invoiced
    already stays as it was issued (R2.4: a refund is a credit note, `renewly invoices credit`,
    the operator's decision), as do its unpaid invoices, which dunning goes on chasing. The
    prorations of seat changes that waited for its next invoice will never be invoiced: their
    sum is returned (below zero, a credit the customer will not get) and audited, as Stripe
    leaves pending items uninvoiced when a subscription is cancelled without `invoice_now`."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        query = hold_until_commit(select(subscriptions).where(subscriptions.c.id == subscription_id), conn)
        subscription = conn.execute(query).first()  # held: the renewal batch must not renew it meanwhile
        if subscription is None:
            raise NotFound(f"no subscription {subscription_id}", code="unknown_subscription")
        if subscription.status != "active":
            raise NotAllowed(f"subscription {subscription_id} is {subscription.status}", code="subscription_inactive")
        _live_account(conn, subscription.account_id)
        plan = conn.execute(select(plans).where(plans.c.id == subscription.plan_id)).one()
        left = conn.execute(select(func.coalesce(func.sum(pending_items.c.amount), 0)).where(
            pending_items.c.subscription_id == subscription_id, pending_items.c.invoice_id.is_(None))).scalar_one()
        conn.execute(subscriptions.update().where(subscriptions.c.id == subscription_id).values(status="cancelled"))
        audit(conn, now, actor, "subscription.cancelled", "subscription", subscription_id,
              details={"account_id": subscription.account_id, "prorations_not_invoiced": int(left)})
        writer.write(conn, writer.event(now, "subscription.cancelled", subscription.account_id,
                                        {"subscription_id": subscription_id}))
    return Money(int(left), plan.currency)
