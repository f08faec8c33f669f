"""A new policy and the cases already open: what it changes for each, if nothing is paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from renewly.dunning.rules.preview import preview_case
from renewly.dunning.rules.schedule import CaseSnapshot, Policy, place, warned_on


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
