"""R8.8: what the policy in force will do to an account on each coming day, if nothing is paid.

An account in dunning has one case: its coming steps, its moved cancellation (the minimum
warning), its deletion, naming every unpaid invoice it chases. An unpaid renewal invoice no case
chases yet (its charge not made or not answered) is shown as the case it would open, or join.
A healthy account is shown what a failed payment of its next renewal would start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, select

from renewly.accounts.accounts import load_account
from renewly.adapters.db.tables import dunning_case_invoices, dunning_cases, invoices, subscriptions
from renewly.billing.rules.invoices import InvoiceKind, InvoiceStatus
from renewly.dunning.rules.preview import DayPreview, preview_case
from renewly.dunning.rules.schedule import CaseSnapshot, place, warned_on
from renewly.ports import Ports
from renewly.shared.calendar import local_date


@dataclass(frozen=True)
class AccountPreview:
    account_id: int
    policy_version: str
    today: date
    status: str
    cases: list[tuple[str, list[DayPreview]]]  # (what it is about, days)


def preview_account(app: Ports, account_id: int) -> AccountPreview:
    now = app.clock.now()
    policy = app.policy
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        today = local_date(now, account.timezone)
        case = conn.execute(select(dunning_cases.c.id, dunning_cases.c.day0, dunning_cases.c.last_step_name,
                                   dunning_cases.c.last_step_day, dunning_cases.c.warned_at,
                                   dunning_cases.c.awaiting_step_name)
                            .where(dunning_cases.c.account_id == account_id, dunning_cases.c.status == "open")).first()
        chased = conn.execute(select(invoices.c.number).join(dunning_case_invoices)
                              .where(dunning_case_invoices.c.case_id == case.id,
                                     invoices.c.status == InvoiceStatus.OPEN.value)
                              .order_by(invoices.c.id)).scalars().all() if case else []
        unchased = conn.execute(select(invoices.c.number, invoices.c.period_start).where(
            invoices.c.account_id == account_id, invoices.c.status == InvoiceStatus.OPEN.value,
            invoices.c.kind == InvoiceKind.INVOICE.value, invoices.c.period_start.is_not(None),
            ~exists().where(dunning_case_invoices.c.invoice_id == invoices.c.id)).order_by(invoices.c.id)).all()
        next_renewal = conn.execute(select(subscriptions.c.current_period_end).where(
            subscriptions.c.account_id == account_id, subscriptions.c.status == "active",
            subscriptions.c.current_period_end.is_not(None)).order_by(subscriptions.c.current_period_end)
            .limit(1)).scalar()
    cancelled_on = local_date(account.cancelled_at, account.timezone) if account.cancelled_at else None
    cases = []
    if cancelled_on is not None:
        # A cancelled account takes no more steps: only its deletion is still to come.
        about = f"{_invoices(chased)} unpaid; cancelled on {cancelled_on}"
        cases.append((about, preview_case(policy, case.day0 if case else cancelled_on, len(policy.steps), today,
                                          cancelled_on=cancelled_on)))
    elif case is not None:
        last_step = place(policy, case.last_step_name, case.last_step_day, warned=case.warned_at is not None)
        warned = case.warned_at and warned_on(policy, CaseSnapshot(
            case.day0, last_step, local_date(case.warned_at, account.timezone)))
        about = f"{_invoices([*chased, *(row.number for row in unchased)])} unpaid since {case.day0}"
        if case.awaiting_step_name is not None:
            about += f"; the notice of {case.awaiting_step_name} waits for its charge's answer"
        cases.append((about, preview_case(policy, case.day0, last_step, today, warned=warned or None)))
    elif unchased and account.status in ("active", "past_due"):
        day0 = min(row.period_start for row in unchased)
        cases.append((f"if the payment of {_invoices([row.number for row in unchased])} fails",
                      preview_case(policy, day0, -1, today)))
    elif next_renewal is not None and account.status in ("active", "past_due"):
        cases.append((f"if the payment of the renewal on {next_renewal} fails",
                      preview_case(policy, next_renewal, -1, today)))
    return AccountPreview(account_id, policy.version, today, account.status, cases)


def _invoices(numbers: Sequence[str]) -> str:
    return f"invoice {numbers[0]}" if len(numbers) == 1 else f"invoices {', '.join(numbers)}"
