"""Dunning as the host product reads it: an account's open case, what the policy will do to it on
each coming day (R8.8), and the banner a member sees now (R8.3, R8.4, R9), with its text in the
account's language, for the host's dashboard to show; and the recovery report, week by week
(docs/dunning.md, "The recovery report")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.dunning.cases import account_dunning
from renewly.dunning.preview import preview_account
from renewly.dunning.reactivation import banner_for_member
from renewly.dunning.recovery_report import recovery_report_of, report_as_json
from renewly.dunning.rules.banners import Audience, Severity, banner_in_words, banner_severity
from renewly.dunning.rules.preview import DayPreview
from renewly.dunning.rules.recovery_report import DEFAULT_WEEKS, MAX_WEEKS
from renewly.web.dependencies import AppPorts
from renewly.web.fields import Email, path_id
from renewly.web.problems import problems
from renewly.web.threads import in_a_read_thread

router = APIRouter(tags=["dunning"])
AccountPath = Annotated[int, path_id("The account's id.")]


class ComingDay(BaseModel):
    day: int = Field(description="Days after the case's day 0.")
    date: date
    step: str | None = Field(description="The policy's step; null: the deletion of the account's data (R10).")
    actions: list[str] = Field(description="What happens that day, in words.")


def _coming(day: DayPreview) -> ComingDay:
    return ComingDay(day=day.day, date=day.date, step=day.step, actions=list(day.actions))


class StepTaken(BaseModel):
    name: str
    day: int = Field(description="The step's day in the policy it was taken under.")
    taken_at: datetime
    taken_on: date = Field(description="In the account's time zone (later than its day when a batch ran late).")
    email: str | None = Field(description="The e-mail its notice sent to the billing contacts, if any.")
    charge: bool = Field(description="Whether it asked for a charge of the unpaid invoices.")


class ChasedInvoice(BaseModel):
    invoice_id: int
    number: str
    amount_due: int = Field(description="In minor units.")
    currency: str
    last_attempt_on: date | None = Field(description="The latest charge attempt's day, in the account's time zone.")
    decline_code: str | None = Field(description="Why the latest attempt was declined, if it was.")
    charge_pending: bool = Field(description="A charge is asked for or waits for the gateway's answer.")


class DunningCase(BaseModel):
    object: Literal["dunning_case"] = "dunning_case"
    id: int
    since: date = Field(description="Day 0: the renewal date of its first unpaid invoice, in the account's time "
                                    "zone.")
    opened_at: datetime
    timezone: str = Field(description="The account's time zone, in which its days are counted.")
    last_step: str | None = Field(description="The last step taken; null: none yet.")
    awaiting_step: str | None = Field(description="A step whose e-mail and banner wait for its charge's answer.")
    warned_on: date | None = Field(description="When the warning before the cancellation was given.")
    steps: list[StepTaken]
    invoices: list[ChasedInvoice] = Field(description="The unpaid invoices it chases.")
    next_step: ComingDay | None = Field(description="What the policy does next if nothing is paid; null: nothing.")


class Dunning(BaseModel):
    object: Literal["dunning"] = "dunning"
    account_id: int
    status: AccountStatus = Field(description="The account's status.")
    banner: Audience = Field(description="Who sees a dunning banner now (per member: the banner endpoint).")
    case: DunningCase | None = Field(description="The open case; null: the account owes nothing overdue.")


@router.get("/accounts/{account_id}/dunning", response_model=Dunning, responses=problems(404))
def dunning_get(account_id: AccountPath, app: AppPorts) -> Dunning:
    """An account's dunning state and its open case: steps taken, invoices chased, the next step."""
    found = account_dunning(app, account_id)
    case = found.case
    shown = None if case is None else DunningCase(
        id=case.case_id, since=case.day0, opened_at=case.opened_at, timezone=case.timezone,
        last_step=case.last_step, awaiting_step=case.awaiting_step,
        warned_on=case.warned_on,
        steps=[StepTaken(name=step.name, day=step.day, taken_at=step.taken_at, taken_on=step.taken_on,
                         email=step.email, charge=step.charge) for step in case.steps],
        invoices=[ChasedInvoice(invoice_id=invoice.invoice_id, number=invoice.number, amount_due=invoice.due,
                                currency=invoice.currency, last_attempt_on=invoice.last_attempt_day,
                                decline_code=invoice.decline_code,
                                charge_pending=invoice.unsettled or invoice.retry_asked)
                  for invoice in case.invoices],
        next_step=_coming(case.next) if case.next else None)
    return Dunning(account_id=account_id, status=AccountStatus(found.status), banner=Audience(found.banner),
                   case=shown)


class PreviewedCase(BaseModel):
    about: str = Field(description="What it is about, in words.")
    days: list[ComingDay]


class DunningPreview(BaseModel):
    object: Literal["dunning_preview"] = "dunning_preview"
    account_id: int
    policy_version: str
    today: date = Field(description="In the account's time zone.")
    status: AccountStatus
    cases: list[PreviewedCase] = Field(description="Its open case, or what a failed payment of its unpaid "
                                                   "invoices or next renewal would start; empty: nothing.")


@router.get("/accounts/{account_id}/dunning/preview", response_model=DunningPreview, responses=problems(404))
def dunning_preview(account_id: AccountPath, app: AppPorts) -> DunningPreview:
    """What the policy in force will do to this account on each coming day if nothing is paid (R8.8)."""
    found = preview_account(app, account_id)
    cases = [PreviewedCase(about=about, days=[_coming(day) for day in days]) for about, days in found.cases]
    return DunningPreview(account_id=found.account_id, policy_version=found.policy_version, today=found.today,
                          status=AccountStatus(found.status), cases=cases)


# What banner_seen says a member sees, when it is a banner (dunning/rules/banners.py).
BannerCode = Literal["owner_and_admins", "everyone", "cancelled", "reactivated", "deleted"]


class Banner(BaseModel):
    code: BannerCode = Field(
        description="owner_and_admins: a payment failed (R8.3); everyone: the cancellation is announced (R8.4); "
                    "cancelled: the account is (R9.1); reactivated: the owner's window to pay (R9.2).")
    severity: Severity
    name: str = Field(description="The banner in words, in the account's language.")
    text: str = Field(description="What the member reads, in the account's language (plain text).")


class MemberBanner(BaseModel):
    object: Literal["member_banner"] = "member_banner"
    account_id: int
    member: str = Field(description="The member's e-mail, as stored (lower case).")
    role: Role
    locale: str = Field(description="The account's language, that of the texts.")
    banner: Banner | None = Field(description="null: this member sees no banner.")


@router.get("/accounts/{account_id}/banner", response_model=MemberBanner, responses=problems(404))
async def member_banner(account_id: AccountPath,
                        member: Annotated[Email, Query(description="The member's e-mail (a query parameter: an "
                                                                   "e-mail may hold characters a path cannot).")],
                        app: AppPorts) -> MemberBanner:
    """The banner a member sees now in the dashboard, by role (R8.3, R8.4, R9), in the account's language."""
    seen = await in_a_read_thread(app, banner_for_member, app, account_id, member)  # one hop: see accounts_get
    severity = banner_severity(seen["banner"])
    return MemberBanner(account_id=account_id, member=seen["member"], role=Role(seen["role"]),
                        locale=seen["locale"],
                        banner=None if severity is None else Banner(
                            code=cast(BannerCode, seen["banner"]), severity=severity,
                            name=banner_in_words(seen["banner"], seen["locale"]),
                            text=seen["text"]))


class RecoveryFigures(BaseModel):
    failed_invoices: int = Field(description="Invoices that entered dunning (joined a case) in the week.")
    failed: int = Field(description="Their totals, in minor units of the currency.")
    recovered: int = Field(description="What charges collected on them since, whenever paid (minor units).")
    credited: int = Field(description="What credit notes took off them (minor units).")
    unpaid: int = Field(description="failed - recovered - credited: still chased, or lost with a cancelled account.")
    share_recovered: float | None = Field(ge=0, le=1, description="recovered / failed, 4 places rounded down; "
                                                                  "null: nothing failed.")
    cases_opened: int = Field(description="Dunning cases opened in the week.")
    cases_recovered: int = Field(description="Of those, the ones that ended with nothing unpaid, one invoice at "
                                             "least paid.")
    median_days_to_recover: int | None = Field(description="Local days from opening to recovery, nearest rank; "
                                                           "null: none recovered.")
    p90_days_to_recover: int | None = Field(description="The 90th percentile of the same, nearest rank.")
    accounts_cancelled: int = Field(description="Accounts dunning cancelled in the week, still cancelled or "
                                                "deleted since.")


class RecoveryWeek(RecoveryFigures):
    week: str = Field(description="The ISO week, e.g. 2026-W05.", examples=["2026-W05"])
    monday: date


class CurrencyRecovery(BaseModel):
    currency: str = Field(description="ISO 4217: every amount of this object is in it, never converted.")
    weeks: list[RecoveryWeek] = Field(description="Every week asked for, oldest first, zeros included.")
    total: RecoveryFigures = Field(description="The weeks together (days: over all their recovered cases).")


class Recovery(BaseModel):
    object: Literal["dunning_recovery"] = "dunning_recovery"
    timezone: str = Field(description="The seller's time zone, whose today ends the weeks (each row is dated in "
                                      "its account's).")
    first_day: date
    last_day: date
    weeks: list[str] = Field(description="The ISO weeks, oldest first.")
    currencies: list[CurrencyRecovery] = Field(description="One per currency with something in these weeks.")


@router.get("/dunning/recovery", response_model=Recovery, responses=problems(422))
def dunning_recovery(app: AppPorts,
                     weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS, description=f"How many ISO weeks, this one "
                                                                                 f"included (1 to {MAX_WEEKS}).")]
                     = DEFAULT_WEEKS) -> Recovery:
    """Failed payments recovered per ISO week and currency: amounts, share, days to recover, cancellations."""
    return Recovery.model_validate(report_as_json(recovery_report_of(app, weeks), app.settings.seller.timezone))
