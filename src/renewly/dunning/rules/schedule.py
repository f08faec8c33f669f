"""The dunning schedule: the policy (data, not code), where a case stands in it, and what is due.

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
from dataclasses import dataclass
from datetime import date, timedelta

from renewly.accounts.rules.members import AccountStatus
from renewly.dunning.rules.banners import Audience

# The accounts a case is open for; a cancelled (or deleted) account's case takes no step.
IN_DUNNING = (AccountStatus.ACTIVE.value, AccountStatus.PAST_DUE.value)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    day: int
    charge: bool = False
    email: str | None = None  # a template name
    banner: Audience = Audience.NONE
    cancel: bool = False


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
        cancel = self.cancel_index
        if cancel is None:
            raise ValueError(f"policy {self.version} has no cancelling step: it gives no cancellation date")
        scheduled = self.step_date(day0, cancel)
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
    after = snapshot.last_step + len(due) + 1
    next_step = after if after < len(policy.steps) else None
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
