"""`/v1/subscriptions`: start one (its first invoice is issued when it starts), change its seats
(prorated on the next invoice), cancel it (billing/subscriptions.py, as `renewly subscriptions`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import plans, subscriptions
from renewly.billing.rules.plans import MAX_SEATS
from renewly.billing.subscriptions import cancel_subscription, change_seats, create_subscription
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import LARGEST_ID, Boolean, Day, Id, integer, path_id
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems

router = APIRouter(tags=["subscriptions"])
SubscriptionId = Annotated[int, path_id("The subscription's id.")]
Seats = Annotated[int, *integer(ge=1, le=MAX_SEATS, description="How many seats are billed.")]


class Subscription(BaseModel):
    object: Literal["subscription"] = "subscription"
    id: int
    account_id: int
    plan: str = Field(description="The plan's code.")
    seats: int
    status: Literal["active", "cancelled"]
    anchor_date: date = Field(description="Period k starts on this day plus k intervals.")
    current_period_start: date | None = Field(description="The first day of the last period invoiced.")
    current_period_end: date | None = Field(description="The day after its last: the next renewal's day.")
    renews_at: datetime
    created_at: datetime


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: Id
    plan: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="The plan's code.")]
    seats: Seats = 1
    start: Day = Field(None, description="Default: today in the account's time zone.")
    backdate: Boolean = Field(False, description="A start more than one period ago: its periods up to today "
                                              "in one catch-up invoice.")


class SeatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: Seats


class SeatChange(BaseModel):
    object: Literal["seat_change"] = "seat_change"
    subscription: Subscription
    prorated_amount: int = Field(description="Added to the next invoice, in minor units (below zero: a credit).")
    currency: str


class Cancellation(BaseModel):
    object: Literal["subscription_cancellation"] = "subscription_cancellation"
    subscription: Subscription
    prorations_not_invoiced: int = Field(description="Prorations of seat changes that waited for the next "
                                                     "invoice and will never be invoiced, in minor units.")
    currency: str


def _subscriptions() -> Select:
    return select(subscriptions, plans.c.code.label("plan_code")).join(plans, plans.c.id == subscriptions.c.plan_id)


def _subscription(row) -> Subscription:
    return Subscription(id=row.id, account_id=row.account_id, plan=row.plan_code, seats=row.seats, status=row.status,
                        anchor_date=row.anchor_date, current_period_start=row.current_period_start,
                        current_period_end=row.current_period_end, renews_at=row.renews_at, created_at=row.created_at)


def _one(app: AppPorts, subscription_id: int) -> Subscription:
    with reading(app.engine) as conn:
        row = conn.execute(_subscriptions().where(subscriptions.c.id == subscription_id)).first()
    if row is None:
        raise NotFound(f"no subscription {subscription_id}", code="unknown_subscription")
    return _subscription(row)


@router.post("/subscriptions", status_code=201, response_model=Subscription, responses=problems(403, 404))
def subscriptions_create(body: SubscriptionIn, app: AppPorts, caller: Caller) -> Subscription:
    """Start a subscription; its first invoice is issued when it starts."""
    app.settings.refuse_the_demo_seller_on_the_system_clock()  # the first invoice
    subscription_id = create_subscription(app, body.account_id, plan_code=body.plan, seats=body.seats,
                                          start=body.start, actor=caller.actor, backdate=body.backdate)
    return _one(app, subscription_id)


@router.get("/subscriptions", response_model=Page[Subscription])
def subscriptions_list(app: AppPorts, page: Paged,
                       account_id: Annotated[int | None, Query(ge=1, le=LARGEST_ID,
                                                               description="Only this account's.")] = None,
                       ) -> Page[Subscription]:
    """The subscriptions (of one account, or all), oldest first."""
    query = _subscriptions()
    if account_id is not None:
        query = query.where(subscriptions.c.account_id == account_id)
    with reading(app.engine) as conn:
        return paginate(conn, query, subscriptions.c.id, page, _subscription)


@router.get("/subscriptions/{subscription_id}", response_model=Subscription, responses=problems(404))
def subscriptions_get(subscription_id: SubscriptionId, app: AppPorts) -> Subscription:
    """One subscription."""
    return _one(app, subscription_id)


@router.post("/subscriptions/{subscription_id}/change_seats", response_model=SeatChange,
             responses=problems(403, 404))
def subscriptions_change_seats(subscription_id: SubscriptionId, body: SeatsIn, app: AppPorts,
                               caller: Caller) -> SeatChange:
    """Change the seat count from today; the prorated difference goes on the next invoice."""
    prorated = change_seats(app, subscription_id, seats=body.seats, actor=caller.actor)
    return SeatChange(subscription=_one(app, subscription_id), prorated_amount=prorated.amount,
                      currency=prorated.currency)


@router.post("/subscriptions/{subscription_id}/cancel", response_model=Cancellation, responses=problems(403, 404))
def subscriptions_cancel(subscription_id: SubscriptionId, app: AppPorts, caller: Caller) -> Cancellation:
    """Stop a subscription now: never renewed nor invoiced again; issued invoices stay as they are."""
    left = cancel_subscription(app, subscription_id, actor=caller.actor)
    return Cancellation(subscription=_one(app, subscription_id), prorations_not_invoiced=left.amount,
                        currency=left.currency)
