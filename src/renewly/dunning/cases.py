"""An account's open dunning case as the host product reads it (`GET /v1/accounts/{id}/dunning`):
since when it is unpaid, the steps taken and on which local day, the invoices it chases with
what their latest charge said, and the next thing the policy will do to it.

A read: it decides nothing. The invoices are read as the notices read them (`case_invoices`),
and the next step is the first day of the account's preview (R8.8, `preview_account`), so that
the case and the preview never disagree about what comes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from renewly.accounts.accounts import load_account
from renewly.adapters.db.tables import dunning_cases, dunning_steps
from renewly.dunning.notices import case_invoices
from renewly.dunning.preview import preview_account
from renewly.dunning.rules.notices import CaseInvoice
from renewly.dunning.rules.preview import DayPreview
from renewly.ports import Ports
from renewly.shared.calendar import local_date


@dataclass(frozen=True, slots=True)
class StepTaken:
    name: str
    day: int  # the step's day in the policy it was taken under
    taken_at: datetime
    taken_on: date  # in the account's time zone: later than day 0 + `day` when a sweep ran late
    email: str | None  # the e-mail its notice sent, if any (a late sweep sends only the latest)
    charge: bool  # it asked for a charge of the unpaid invoices


@dataclass(frozen=True, slots=True)
class OpenCase:
    case_id: int
    timezone: str
    day0: date  # the renewal date of its first unpaid invoice, in the account's time zone
    opened_at: datetime
    last_step: str | None  # the last step taken, by its name; None: none yet
    warned_on: date | None  # when the warning before the cancellation was given
    awaiting_step: str | None  # a step whose notice waits for the answer of its charges
    steps: list[StepTaken]
    invoices: list[CaseInvoice]  # the unpaid invoices it chases
    next: DayPreview | None  # None: nothing more is scheduled


@dataclass(frozen=True, slots=True)
class AccountDunning:
    account_id: int
    status: str  # the account's
    banner: str  # who sees a banner now (an Audience): each member's is `banner_for_member`
    case: OpenCase | None  # None: nothing overdue is chased


def account_dunning(app: Ports, account_id: int) -> AccountDunning:
    """The account's dunning state and its open case (an unknown account is refused)."""
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        case = conn.execute(select(dunning_cases).where(dunning_cases.c.account_id == account_id,
                                                        dunning_cases.c.status == "open")).first()
        if case is None:
            return AccountDunning(account_id, account.status, account.banner, None)
        steps = conn.execute(select(dunning_steps).where(dunning_steps.c.case_id == case.id)
                             .order_by(dunning_steps.c.id)).all()
        unpaid = case_invoices(conn, [case.id], {case.id: account.timezone}).get(case.id, [])
    zone = account.timezone
    # The preview of an account with an open case is that case's coming days (or, once it is
    # cancelled, its deletion): its first one is what comes next.
    coming = preview_account(app, account_id).cases
    return AccountDunning(account_id, account.status, account.banner, OpenCase(
        case_id=case.id, timezone=zone, day0=case.day0, opened_at=case.opened_at,
        last_step=case.last_step_name, warned_on=local_date(case.warned_at, zone) if case.warned_at else None,
        awaiting_step=case.awaiting_step_name,
        steps=[StepTaken(step.name, step.day, step.taken_at, local_date(step.taken_at, zone), step.email,
                         bool(step.charge_requested)) for step in steps],
        invoices=unpaid, next=coming[0][1][0] if coming and coming[0][1] else None))
