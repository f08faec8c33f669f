"""`/v1/plans`: the plan catalogue (billing/plans.py). Prices per seat in integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import plans
from renewly.billing.plans import create_plan
from renewly.billing.rules.plans import MAX_UNIT_AMOUNT
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import Currency, integer, path_id, text
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems

router = APIRouter(tags=["plans"])


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                               description="Unique: what subscriptions name.")]
    name: Annotated[str, text(200)]
    interval: Literal["month", "year"]
    unit_amount: Annotated[int, *integer(ge=0, le=MAX_UNIT_AMOUNT, description="Per seat and period, in minor units.")]
    currency: Currency


class Plan(BaseModel):
    object: Literal["plan"] = "plan"
    id: int
    code: str
    name: str
    interval: Literal["month", "year"]
    unit_amount: int
    currency: str
    created_at: datetime


def _shape(row) -> Plan:
    return Plan(id=row.id, code=row.code, name=row.name, interval=row.interval, unit_amount=row.unit_amount,
                currency=row.currency, created_at=row.created_at)


def _plan(app: AppPorts, plan_id: int) -> Plan:
    with reading(app.engine) as conn:
        row = conn.execute(select(plans).where(plans.c.id == plan_id)).first()
    if row is None:
        raise NotFound(f"no plan {plan_id}", code="unknown_plan")
    return _shape(row)


@router.post("/plans", status_code=201, response_model=Plan)
def plans_create(body: PlanIn, app: AppPorts, caller: Caller) -> Plan:
    """Add a plan to the catalogue."""
    plan_id = create_plan(app, code=body.code, name=body.name, interval=body.interval, price=body.unit_amount,
                          currency=body.currency, actor=caller.actor)
    return _plan(app, plan_id)


@router.get("/plans", response_model=Page[Plan])
def plans_list(app: AppPorts, page: Paged) -> Page[Plan]:
    """The plans, oldest first."""
    with reading(app.engine) as conn:
        return paginate(conn, select(plans), plans.c.id, page, _shape)


@router.get("/plans/{plan_id}", response_model=Plan, responses=problems(404))
def plans_get(plan_id: Annotated[int, path_id("The plan's id.")], app: AppPorts) -> Plan:
    """One plan."""
    return _plan(app, plan_id)
