"""R8.8: what the policy will do on each coming day of a case if nothing is paid, in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from renewly.dunning.rules.banners import Audience
from renewly.dunning.rules.schedule import Policy, Step
from renewly.retention.rules.deadlines import deletion_date


@dataclass(frozen=True, slots=True)
class DayPreview:
    day: int
    date: date
    actions: tuple[str, ...]
    step: str | None = None  # the step's name; None for the deletion


def preview_case(policy: Policy, day0: date, last_step: int, today: date, *, warned: date | None = None,
                 cancelled_on: date | None = None) -> list[DayPreview]:
    """R8.8: what the policy will do on each coming day if nothing is paid.

    A warning not given yet is given on its day, or today if that is past; the cancellation
    then comes as `Policy.cancellation_date` says."""
    days: list[DayPreview] = []
    warning = policy.warning_index
    if warning is not None and warned is None and last_step >= warning:
        warned = today  # taken, its notice waiting for the charge's answer: given today at the earliest
    if cancelled_on is None:
        for index, step in enumerate(policy.steps):
            if index <= last_step:
                continue
            if index == warning and warned is None:
                warned = max(policy.step_date(day0, index), today)
            when = max(policy.step_day(day0, index, warned) or policy.step_date(day0, index), today)
            days.append(DayPreview((when - day0).days, when, describe_step(step), step.name))
            if step.cancel:
                cancelled_on = when
    if cancelled_on is not None:
        deletion = deletion_date(cancelled_on, policy.deletion_days)
        if deletion >= today:
            days.append(DayPreview((deletion - day0).days, deletion,
                                   ("personal data deleted; the account can never be reactivated (R10)",)))
    return days


def describe_step(step: Step) -> tuple[str, ...]:
    actions = []
    if step.charge:
        actions.append("charge attempt")
    if step.email:
        actions.append(f"e-mail {step.email!r} to billing contacts" + (" if it fails" if step.charge else ""))
    if step.banner is not Audience.NONE:
        actions.append({Audience.OWNER_AND_ADMINS: "banner for owner and admins",
                        Audience.EVERYONE: "banner for every member"}[step.banner])
    if step.cancel:
        actions.append("account cancelled: nobody can use the dashboard")
    return tuple(actions)
