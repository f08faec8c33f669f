"""Dunning: the policy (data, not code), and the pure decisions taken from it.

Kill Bill's split: a snapshot of one case is built by I/O, `evaluate(policy, snapshot, today)`
decides here, and the service applies the decision in one transaction. Day 0 is the renewal
date of the case's first unpaid invoice, counted in calendar days in the account's time zone.

A step's *notice* is what tells people about it: its e-mail to the billing contacts and its
banner. A charging step attempts first and gives its notice from the attempt's answer (a
customer is never told "the attempt failed" before the attempt): the service gives it at once
when nothing is to be charged, and otherwise when the step's charges are settled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from renewly.accounts.rules.members import AccountStatus, Role


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
    steps: tuple[Step, ...]  # sorted by day; only the last may cancel
    reactivation_days: int = 7
    deletion_days: int = 90
    invoice_retention_years: int = 10
    verification_void_delay_days: int = 3
    # The warning (the step before the cancellation) is given at least this many days before the
    # account is cancelled: a late run that finds both due gives the warning and moves the
    # cancellation. 0: no such rule.
    minimum_warning_days: int = 0
    templates: Mapping[tuple[str, str], EmailTemplate] = field(default_factory=dict)  # (name, locale)
    banners: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (audience or state, locale)

    @property
    def schedule_key(self) -> str:
        """What the open cases' next steps depend on (the steps' names, days and kinds, the minimum
        warning), as 64 hexadecimal digits: another key, and every open case is rescheduled."""
        schedule = repr((tuple((s.name, s.day, s.charge, s.cancel) for s in self.steps), self.minimum_warning_days))
        return hashlib.sha256(schedule.encode()).hexdigest()

    def index_of(self, name: str) -> int | None:
        """The position of the step named `name`, if the policy has it (steps are known by name:
        positions change when an operator adds or removes a step)."""
        return next((index for index, step in enumerate(self.steps) if step.name == name), None)

    @property
    def cancel_index(self) -> int | None:
        return len(self.steps) - 1 if self.steps and self.steps[-1].cancel else None

    @property
    def warning_index(self) -> int | None:
        """The step whose notice must precede the cancellation by `minimum_warning_days`, if any."""
        cancel = self.cancel_index
        return cancel - 1 if cancel and self.minimum_warning_days > 0 else None

    def step_date(self, day0: date, index: int) -> date:
        """The day a step is scheduled for (the cancellation may come later: `step_day`)."""
        return day0 + timedelta(days=self.steps[index].day)

    def cancellation_date(self, day0: date, warned_on: date | None) -> date:
        """The cancellation's day once the warning was given on `warned_on`: never earlier than
        scheduled, never fewer than `minimum_warning_days` after the warning."""
        scheduled = self.step_date(day0, self.cancel_index)
        if warned_on is None or self.warning_index is None:
            return scheduled
        return max(scheduled, warned_on + timedelta(days=self.minimum_warning_days))

    def step_day(self, day0: date, index: int, warned_on: date | None) -> date | None:
        """The day step `index` falls due; None for a cancellation still waiting for its warning."""
        if index != self.cancel_index or self.warning_index is None:
            return self.step_date(day0, index)
        return self.cancellation_date(day0, warned_on) if warned_on is not None else None

    def next_charge_date(self, day0: date, after: int) -> date | None:
        """The day of the next charging step after step `after` (what a failure e-mail promises)."""
        return next((self.step_date(day0, i) for i in range(after + 1, len(self.steps)) if self.steps[i].charge),
                    None)


def place(policy: Policy, last_name: str | None, last_day: int | None, *, warned: bool) -> int:
    """Where a case stands in `policy`: the position of the last step it took, found by its name.

    A case is recorded with the name and day of its last step, never a position: the policy in
    force may have been edited since. A step it no longer has (removed, or renamed) leaves the
    case after the last step scheduled on or before that step's day: the case goes on with the
    steps that come later, and none of the days it has passed is given late (no day-2 e-mail
    after a day-10 one). Except the warning before the cancellation: a case that was never warned
    (`warned`: its warning day is recorded) stands before it, and is warned at the next sweep.
    -1: before the first step."""
    if last_name is None:
        return -1
    index = policy.index_of(last_name)
    if index is not None:
        return index
    day = -1 if last_day is None else last_day
    index = max((index for index, step in enumerate(policy.steps) if step.day <= day), default=-1)
    warning = policy.warning_index
    return warning - 1 if warning is not None and index >= warning and not warned else index


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    """What `evaluate` reads of a case: nothing else, so that cases alike share a decision."""

    day0: date
    last_step: int  # where the case stands in the policy (`place`); -1 before the first step
    warned_on: date | None = None  # local date the warning's notice was given, if it was


@dataclass(frozen=True, slots=True)
class Decision:
    steps: tuple[int, ...] = ()  # steps to record as taken now
    # The step whose notice still makes sense: the latest due one (never a day-2 e-mail after a
    # day-21 warning). Given at once, or when the charges asked for below are settled.
    notice_step: int | None = None
    # Charge every unpaid invoice not attempted on or after this day (the latest due charging
    # step's date): missed charging steps make one charge, none if a charge came since.
    charge_since: date | None = None
    cancel: bool = False
    next_step: int | None = None  # the next step to come, if any

    @property
    def changes_anything(self) -> bool:
        return bool(self.steps)


def warned_on(policy: Policy, snapshot: CaseSnapshot) -> date | None:
    """The warning's day, if the case has given it (a case past the warning step has)."""
    warning = policy.warning_index
    if warning is None or snapshot.last_step < warning:
        return None
    return snapshot.warned_on


def evaluate(policy: Policy, snapshot: CaseSnapshot, today: date) -> Decision:
    """What to do for an account's case today (R8, R8.7).

    Every due step not yet taken is recorded, but a late sweep acts like the latest one only: its
    notice alone is given, and the missed charges become one charge. A cancellation never comes
    before the warning has been given for the policy's minimum warning: a sweep late past both
    gives the warning now and leaves the cancellation for later. A cancelling step charges nothing.
    """
    warned = warned_on(policy, snapshot)
    due = []
    for index in range(snapshot.last_step + 1, len(policy.steps)):
        day = policy.step_day(snapshot.day0, index, warned)
        if day is None or day > today:
            break
        due.append(index)
    next_step = snapshot.last_step + len(due) + 1
    next_step = next_step if next_step < len(policy.steps) else None
    if not due:
        return Decision(next_step=next_step)
    latest = due[-1]
    cancel = policy.steps[latest].cancel
    charging = [i for i in due if policy.steps[i].charge]
    charge_since = policy.step_date(snapshot.day0, charging[-1]) if charging and not cancel else None
    return Decision(steps=tuple(due), notice_step=latest, charge_since=charge_since, cancel=cancel,
                    next_step=next_step)


def needs_charge(charge_since: date | None, last_attempt_day: date | None) -> bool:
    """Whether an unpaid invoice is charged for a step: not when a charge came since its day."""
    return charge_since is not None and (last_attempt_day is None or last_attempt_day < charge_since)


def next_step_date(policy: Policy, day0: date, next_step: int | None, warned: date | None) -> date | None:
    """When the case next needs the sweep; None when no step is left, or when the cancellation
    waits for the warning, whose notice then schedules it."""
    return policy.step_day(day0, next_step, warned) if next_step is not None else None


def banner_after(policy: Policy, notice_step: int) -> Audience:
    return policy.steps[notice_step].banner


def stronger_banner(current: str, new: Audience) -> str:
    """Merging the banners of cases told at once (a banner never softens within one slice)."""
    return new.value if Audience(current).severity < new.severity else current


def deletion_date(policy: Policy, cancelled_on: date) -> date:
    """R10.1: the local day an account's personal data is deleted, from its local cancellation day."""
    return cancelled_on + timedelta(days=policy.deletion_days)


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


def banner_seen(account_banner: str, status: str, role: Role, reactivation_running: bool = False) -> str:
    """Which banner a member sees now: none, owner_and_admins, everyone, the cancelled page, or,
    for the owner during a temporary reactivation, what to do now and until when."""
    if status == AccountStatus.CANCELLED:
        return "reactivated" if reactivation_running and role is Role.OWNER else "cancelled"
    if status == AccountStatus.DELETED:
        return "deleted"
    audience = Audience(account_banner)
    return audience.value if audience.includes(role) else Audience.NONE.value


def banners_seen(account_banner: str, status: str, reactivation_running: bool = False) -> dict[str, str]:
    """What each role sees: what events tell the host product."""
    return {role.value: banner_seen(account_banner, status, role, reactivation_running) for role in Role}


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
        deletion = deletion_date(policy, cancelled_on)
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


# -- a new policy and the cases already open ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OpenCase:
    """What a policy reads of an open case (local dates of its account)."""

    day0: date
    last_step: str | None  # the name of the last step taken, as recorded; None: none yet
    last_step_day: int | None  # its day in the policy it was taken under
    warned_on: date | None
    awaiting_step: str | None  # the step whose notice waits for its charges


@dataclass(frozen=True, slots=True)
class CaseMove:
    """What a new policy changes for an open case, if nothing is paid: the steps to come, by
    name and date (a date of today: due at the next sweep), under the policy in force and under
    the new one."""

    after: str | None  # the new policy's step the case stands after (None: before its first)
    last_step_gone: bool  # the new policy has no step of that name (removed or renamed)
    notice_dropped: bool  # the notice waiting for its charges names a step the new policy lacks
    was: tuple[tuple[str, date], ...]
    now: tuple[tuple[str, date], ...]
    today: date

    @property
    def moves(self) -> bool:
        return self.last_step_gone or self.notice_dropped or self.was != self.now

    @property
    def due_at_once(self) -> tuple[str, ...]:
        """The new schedule's steps due at the next sweep that were not due then under the old."""
        was_due = {name for name, day in self.was if day <= self.today}
        return tuple(name for name, day in self.now if day <= self.today and name not in was_due)

    @staticmethod
    def cancellation(steps: tuple[tuple[str, date], ...], policy: Policy) -> date | None:
        cancel = policy.cancel_index
        name = policy.steps[cancel].name if cancel is not None else None
        return next((day for step, day in steps if step == name), None)


def steps_to_come(policy: Policy, case: OpenCase, today: date) -> tuple[tuple[str, date], ...]:
    """The steps `policy` will take for the case from today, as the sweep would (`place`)."""
    last = place(policy, case.last_step, case.last_step_day, warned=case.warned_on is not None)
    warned = warned_on(policy, CaseSnapshot(case.day0, last, case.warned_on))
    return tuple((day.step, day.date) for day in preview_case(policy, case.day0, last, today, warned=warned)
                 if day.step is not None)


def move_under(current: Policy, new: Policy, case: OpenCase, today: date) -> CaseMove:
    """What changes for `case` if `new` replaces `current` today."""
    after = place(new, case.last_step, case.last_step_day, warned=case.warned_on is not None)
    return CaseMove(after=new.steps[after].name if after >= 0 else None,
                    last_step_gone=case.last_step is not None and new.index_of(case.last_step) is None,
                    notice_dropped=case.awaiting_step is not None and new.index_of(case.awaiting_step) is None,
                    was=steps_to_come(current, case, today), now=steps_to_come(new, case, today), today=today)
