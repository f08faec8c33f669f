"""R8.8: what the policy in force will do to an account on each coming day, if nothing is paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from renewly.adapters.db.tables import dunning_cases, invoices, subscriptions
from renewly.bootstrap import App
from renewly.domain.calendar import local_date
from renewly.domain.dunning import DayPreview, preview_case
from renewly.services.accounts import load_account


@dataclass(frozen=True)
class AccountPreview:
    account_id: int
    policy_version: str
    today: date
    status: str
    cases: list[tuple[str, list[DayPreview]]]  # (what it is about, days)


def preview_account(app: App, account_id: int) -> AccountPreview:
    now = app.clock.now()
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        today = local_date(now, account.timezone)
        open_cases = conn.execute(
            select(dunning_cases.c.day0, dunning_cases.c.last_step, invoices.c.number)
            .join(invoices, invoices.c.id == dunning_cases.c.invoice_id)
            .where(dunning_cases.c.account_id == account_id, dunning_cases.c.status == "open")
            .order_by(dunning_cases.c.day0)).all()
        next_renewal = conn.execute(select(subscriptions.c.current_period_end).where(
            subscriptions.c.account_id == account_id, subscriptions.c.status == "active",
            subscriptions.c.current_period_end.is_not(None)).order_by(subscriptions.c.current_period_end)
            .limit(1)).scalar()
    cancelled_on = local_date(account.cancelled_at, account.timezone) if account.cancelled_at else None
    # A cancelled account's cases take no more steps: only its deletion is still to come.
    frozen = len(app.policy.steps) if cancelled_on else None
    cases = [(f"invoice {row.number} unpaid since {row.day0}",
              preview_case(app.policy, row.day0, frozen if frozen is not None else row.last_step, today,
                           cancelled_at=cancelled_on))
             for row in open_cases]
    if not cases and next_renewal is not None and account.status in ("active", "past_due"):
        cases.append((f"if the payment of the renewal on {next_renewal} fails",
                      preview_case(app.policy, next_renewal, -1, today)))
    return AccountPreview(account_id, app.policy.version, today, account.status, cases)
