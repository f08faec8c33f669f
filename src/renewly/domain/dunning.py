"""Dunning: the policy (data, not code), and the pure decisions taken from it.

Kill Bill's split: a snapshot of one case is built by I/O, `evaluate(policy, snapshot, today)`
decides here, and the service applies the decision in one transaction. Day 0 is the renewal
date, counted in calendar days in the account's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from renewly.domain.accounts import AccountStatus, Role


class Audience(StrEnum):
    """Who sees a dunning banner; ordered from the mildest."""

    NONE = "none"
    OWNER_AND_ADMINS = "owner_and_admins"
    EVERYONE = "everyone"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def includes(self, role: Role) -> bool:
        if self is Audience.EVERYONE:
            return True
        return self is Audience.OWNER_AND_ADMINS and role in (Role.OWNER, Role.ADMIN)


_SEVERITY = {audience: rank for rank, audience in enumerate(Audience)}


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    day: int
    charge: bool = False
    email: str | None = None  # a template name
    banner: Audience = Audience.NONE
    cancel: bool = False


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    steps: tuple[Step, ...]  # sorted by day
    reactivation_days: int = 7
    deletion_days: int = 90
    invoice_retention_years: int = 10
    verification_void_delay_days: int = 3
    templates: Mapping[tuple[str, str], EmailTemplate] = field(default_factory=dict)  # (name, locale)
    banners: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (audience or state, locale)

    def step_date(self, day0: date, index: int) -> date:
        return day0 + timedelta(days=self.steps[index].day)


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    case_id: int
    account_id: int
    day0: date
    last_step: int  # the highest step index already taken; -1 for none
    last_attempt_day: date | None  # local date of the invoice's latest charge attempt


@dataclass(frozen=True, slots=True)
class Decision:
    steps: tuple[int, ...] = ()  # steps to record as taken now
    email: str | None = None  # the one e-mail that still makes sense: the latest due step's
    email_step: int | None = None
    request_charge: bool = False
    banner: Audience = Audience.NONE
    cancel: bool = False
    next_step: int | None = None  # the next step to come, if any

    @property
    def changes_anything(self) -> bool:
        return bool(self.steps)


def due_steps(policy: Policy, day0: date, today: date) -> list[int]:
    return [i for i, step in enumerate(policy.steps) if day0 + timedelta(days=step.day) <= today]


def evaluate(policy: Policy, snapshot: CaseSnapshot, today: date) -> Decision:
    """What to do for an unpaid invoice's case today (R8, R8.7).

    Every due step not yet taken is recorded, but a late sweep acts like the latest one only:
    its e-mail alone is sent (never a day-2 e-mail after a day-21 warning) and the missed
    charges become one charge, none if the invoice was already attempted since that step's day.
    """
    due = [i for i in due_steps(policy, snapshot.day0, today) if i > snapshot.last_step]
    upcoming = [i for i in range(len(policy.steps)) if i > snapshot.last_step and i not in due]
    next_step = upcoming[0] if upcoming else None
    taken = max(due) if due else snapshot.last_step
    banner = policy.steps[taken].banner if taken >= 0 else Audience.NONE
    if not due:
        return Decision(banner=banner, next_step=next_step)
    latest = policy.steps[taken]
    charging = [i for i in due if policy.steps[i].charge]
    charge = bool(charging) and (snapshot.last_attempt_day is None
                                 or snapshot.last_attempt_day < policy.step_date(snapshot.day0, max(charging)))
    return Decision(steps=tuple(due), email=latest.email, email_step=taken if latest.email else None,
                    request_charge=charge, banner=banner, cancel=any(policy.steps[i].cancel for i in due),
                    next_step=next_step)


class Access(StrEnum):
    FULL = "full"
    BILLING_ONLY = "billing_only"  # the owner, during a temporary reactivation (R9.2)
    NONE = "none"  # cancelled (R9.1) or deleted


def dashboard_access(status: str, role: Role, reactivation_running: bool) -> Access:
    if status in (AccountStatus.ACTIVE, AccountStatus.PAST_DUE):
        return Access.FULL
    if status == AccountStatus.CANCELLED and reactivation_running and role is Role.OWNER:
        return Access.BILLING_ONLY
    return Access.NONE


def banner_seen(account_banner: str, status: str, role: Role) -> str:
    """Which banner a member sees now: none, owner_and_admins, everyone, or the cancelled page."""
    if status == AccountStatus.CANCELLED:
        return "cancelled"
    if status == AccountStatus.DELETED:
        return "deleted"
    audience = Audience(account_banner)
    return audience.value if audience.includes(role) else Audience.NONE.value


@dataclass(frozen=True, slots=True)
class DayPreview:
    day: int
    date: date
    actions: tuple[str, ...]


def preview_case(policy: Policy, day0: date, last_step: int, today: date, *, cancelled_at: date | None = None
                 ) -> list[DayPreview]:
    """R8.8: what the policy will do on each coming day if nothing is paid."""
    days: list[DayPreview] = []
    for index, step in enumerate(policy.steps):
        when = policy.step_date(day0, index)
        if index <= last_step or when < today:
            continue
        days.append(DayPreview(step.day, when, describe_step(step)))
        if step.cancel and cancelled_at is None:
            cancelled_at = when
    if cancelled_at is not None:
        deletion = cancelled_at + timedelta(days=policy.deletion_days)
        if deletion >= today:
            days.append(DayPreview((deletion - day0).days, deletion,
                                   ("personal data deleted; the account can never be reactivated (R10)",)))
    return days


def describe_step(step: Step) -> tuple[str, ...]:
    actions = []
    if step.charge:
        actions.append("charge attempt")
    if step.email:
        actions.append(f"e-mail {step.email!r} to billing contacts")
    if step.banner is not Audience.NONE:
        actions.append({Audience.OWNER_AND_ADMINS: "banner for owner and admins",
                        Audience.EVERYONE: "banner for every member"}[step.banner])
    if step.cancel:
        actions.append("account cancelled: nobody can use the dashboard")
    return tuple(actions)


def deletion_due(cancelled_at: datetime, policy: Policy) -> datetime:
    return cancelled_at + timedelta(days=policy.deletion_days)
