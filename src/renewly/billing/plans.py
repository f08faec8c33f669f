"""Plans: the operator's catalogue."""

from __future__ import annotations

from sqlalchemy import select

from renewly.adapters.db.tables import plans
from renewly.billing.rules.plans import Plan
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import Conflict, NotFound


def create_plan(app: Ports, *, code: str, name: str, interval: str, price: int, currency: str, actor: str) -> int:
    plan = Plan.define(code, name, interval, price, currency)
    now = app.clock.now()
    with app.engine.begin() as conn:
        if conn.execute(select(plans.c.id).where(plans.c.code == plan.code)).first():
            raise Conflict(f"a plan with code {plan.code!r} already exists", code="plan_exists")
        plan_id = conn.execute(plans.insert().values(
            code=plan.code, name=plan.name, interval=plan.interval, unit_amount=plan.unit_price.amount,
            currency=plan.unit_price.currency, created_at=now).returning(plans.c.id)).scalar_one()
        audit(conn, now, actor, "plan.created", "plan", plan_id,
              details={"code": plan.code, "unit_amount": plan.unit_price.amount, "currency": plan.unit_price.currency})
    return plan_id


def list_plans(app: Ports) -> list[dict]:
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(plans).order_by(plans.c.code))]


def plan_by_code(conn, code: str):
    row = conn.execute(select(plans).where(plans.c.code == code)).first()
    if row is None:
        raise NotFound(f"no plan with code {code!r}", code="unknown_plan")
    return row
