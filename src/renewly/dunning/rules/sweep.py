"""What the sweep does with a due case today, once `evaluate` has decided which steps are due.

Plain values in, a plain outcome out; `dunning/sweep.py` loads the cases, calls these, and writes
the outcome (the case's row, the steps, the charges asked for, the notice, the event).

A charging step attempts first and tells after: with charges asked for (or still in flight), its
notice waits for their answers; otherwise it is given now. A cancellation too waits for the
answer of a charge in flight (a card update's): it may pay, and nothing is charged after a
cancellation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from renewly.dunning.rules.notices import CaseInvoice, notice_reason
from renewly.dunning.rules.schedule import CaseSnapshot, Decision, Policy, needs_charge, next_step_date, warned_on
from renewly.shared.calendar import local_date


def day0(renewal_date: date, subscribed_on: date) -> date:
    """A case's day 0 for an unpaid renewal invoice: the renewal date, never before the
    subscription existed (a backdated one's catch-up invoice is due from the day it was issued,
    not from its first period)."""
    return max(renewal_date, subscribed_on)


def days0(unpaid: Iterable[tuple[int, date, datetime, str]]) -> dict[int, tuple[date, str]]:
    """(day 0, time zone) of each account's new case, from its unpaid renewal invoices given as
    (account, renewal date, subscription's creation, account's time zone): the earliest."""
    found: dict[int, tuple[date, str]] = {}
    for account_id, renewal_date, subscribed_at, timezone in unpaid:
        day = day0(renewal_date, local_date(subscribed_at, timezone))
        earliest = found.get(account_id)
        if earliest is None or day < earliest[0]:
            found[account_id] = (day, timezone)
    return found


def warned_by_default(policy: Policy, last_step: int, warned_on: date | None, awaiting_step: str | None) -> bool:
    """A case past the warning step of the policy in force without a warning day (a policy that
    gained a minimum warning, or a warning step, since the case passed it), and no notice waiting:
    counted warned today, so that its cancellation comes the minimum warning from now, never stuck."""
    warning = policy.warning_index
    return warning is not None and last_step >= warning and warned_on is None and awaiting_step is None


def charges_pending(unpaid: Sequence[CaseInvoice]) -> bool:
    """Whether a charge of the case is still to come: asked for and not made, or made and not
    answered. A notice waits for it."""
    for invoice in unpaid:  # a loop, not any(): nearly every case has one invoice
        if invoice.unsettled or invoice.retry_asked:
            return True
    return False


def invoices_to_charge(decision: Decision, unpaid: Sequence[CaseInvoice], has_card: bool) -> tuple[int, ...]:
    """The unpaid invoices a decision charges: none without a card, none charged since the step's day."""
    since = decision.charge_since
    if not has_card or since is None:
        return ()
    return tuple([invoice.invoice_id for invoice in unpaid if needs_charge(since, invoice.last_attempt_day)])


@dataclass(slots=True)  # not frozen: a mass-decline day builds a million of these
class CaseOutcome:
    """What the sweep writes for a due case."""

    settled: bool = False  # nothing left unpaid (paid or credited since): the case closes, nothing else
    last_step: tuple[str, int] | None = None  # the name and day of the step taken last now; None: as it was
    next_step_on: date | None = None  # the local day the case is next due; None: no step, or waiting
    awaiting_step: str | None = None  # the step whose notice waits for its charges
    warned: bool = False  # the warning's notice is given now (or counted given): its day is today
    charge: tuple[int, ...] = ()  # the invoices to charge now
    notice_now: bool = False  # the notice of `decision.notice_step` is given now
    reason: str | None = None  # why, as the notice given now says it


def decide_case(policy: Policy, decision: Decision, snapshot: CaseSnapshot, unpaid: Sequence[CaseInvoice], *,
                has_card: bool, awaiting_step: str | None, warned_now: bool, today: date) -> CaseOutcome:
    """What to write for a due case whose steps `decision` (`evaluate`'s) says are due today."""
    if not unpaid:
        return CaseOutcome(settled=True)
    warned = warned_on(policy, snapshot)
    if not decision.changes_anything:  # claimed at a moment that is not yet its next step's day
        return CaseOutcome(next_step_on=next_step_date(policy, snapshot.day0, decision.next_step, warned),
                           awaiting_step=awaiting_step, warned=warned_now)
    charge = invoices_to_charge(decision, unpaid, has_card)
    waits = bool(charge) or charges_pending(unpaid)
    step = decision.notice_step
    if step is None:
        raise ValueError("a decision that takes steps names the step whose notice it gives")
    warned_now = warned_now or (not waits and step == policy.warning_index)
    if warned_now:
        warned = today
    # The cancellation waits for the warning, whose notice (when its charges are answered) schedules it.
    waiting_for_warning = waits and step == policy.warning_index
    next_on = None if decision.cancel or waiting_for_warning else next_step_date(
        policy, snapshot.day0, decision.next_step, warned)
    last = policy.steps[decision.steps[-1]]
    return CaseOutcome(last_step=(last.name, last.day), next_step_on=next_on,
                       awaiting_step=policy.steps[step].name if waits else None, warned=warned_now, charge=charge,
                       notice_now=not waits, reason=None if waits else notice_reason(unpaid, has_card))


StepRecord = tuple[int, str, int, str | None, int]


def recorded_steps(policy: Policy, decision: Decision, *, charged: bool) -> tuple[StepRecord, ...]:
    """The steps a decision records as taken: (position, name, day, e-mail of the notice step, 1 on
    the last step when it asked for a charge)."""
    last = decision.steps[-1] if decision.steps else -1
    return tuple((index, policy.steps[index].name, policy.steps[index].day,
                  policy.steps[index].email if index == decision.notice_step else None,
                  int(charged and index == last)) for index in decision.steps)
