"""A dunning step's notice: what it does to the account, the dates it announces, why it says
the charge failed.

The notice of a step changes the account's status and banner (past due, R8.3-R8.4; cancelled,
R8.5, with the deletion day of R10.1), and names the cancellation day the customer can still
avoid. Its e-mail says why the last charge failed: the latest decline among the case's unpaid
invoices, or that no card is on file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from renewly.accounts.rules.members import AccountStatus
from renewly.dunning.rules.schedule import CaseSnapshot, Policy, Step, warned_on
from renewly.payments.rules.charges import NO_CARD
from renewly.retention.rules.deadlines import deletion_date


@dataclass(slots=True)
class CaseInvoice:
    """An unpaid invoice of a case, and what its latest charge attempt says."""

    invoice_id: int
    number: str
    due: int
    currency: str
    last_attempt_day: date | None  # local date of the latest attempt
    unsettled: bool  # the latest attempt still waits for the gateway's answer
    decline_code: str | None  # the latest attempt's, if it was declined
    attempt_id: int | None = None  # the latest attempt
    retry_asked: bool = False  # a charge asked for and not made yet


def latest_decline(unpaid: Sequence[CaseInvoice]) -> str | None:
    """The decline code of the most recent declined attempt among the invoices: why, in the notice."""
    if len(unpaid) == 1:  # nearly every case
        return unpaid[0].decline_code
    declined = [invoice for invoice in unpaid if invoice.decline_code]
    return max(declined, key=lambda invoice: invoice.attempt_id or 0).decline_code if declined else None


def notice_reason(unpaid: Sequence[CaseInvoice], has_card: bool) -> str | None:
    """Why a notice says the invoices are unpaid: no card on file, or the latest decline."""
    return latest_decline(unpaid) if has_card else NO_CARD


@dataclass(frozen=True, slots=True)
class AccountAfterNotice:
    """The account's status and banner once a step's notice is given."""

    status: str
    banner: str
    changed: bool  # other than they were: an `account.dunning_state` event says so
    cancelled: bool = False  # the step cancels the account (R8.5): recorded even if it was already
    deletion_on: date | None = None  # the local day its personal data is deleted (R10.1), if cancelled


def account_after_notice(step: Step, status: str, banner: str, today: date, deletion_days: int) -> AccountAfterNotice:
    """A step's notice makes the account past due (active → past_due), or cancels it today with its
    deletion day set; either way the account shows the step's banner."""
    new_status = AccountStatus.CANCELLED.value if step.cancel else AccountStatus.PAST_DUE.value
    new_banner = step.banner.value
    changed = (new_status, new_banner) != (status, banner)
    if step.cancel:
        return AccountAfterNotice(new_status, new_banner, changed, True, deletion_date(today, deletion_days))
    return AccountAfterNotice(new_status, new_banner, changed)


def cancellation_date(policy: Policy, day0: date, step_index: int, today: date) -> date | None:
    """The cancellation day a notice of step `step_index` given today announces (the warning's
    own notice moves it when it comes late)."""
    if policy.cancel_index is None:
        return None
    if step_index == policy.cancel_index:
        return today
    warning = policy.warning_index
    return policy.cancellation_date(day0, today if warning is not None and step_index >= warning else None)


def announced_cancellation(policy: Policy, cancelled_on: date | None, day0: date | None, last_step: int,
                           warned: date | None) -> date | None:
    """The cancellation day a banner names: the day it happened, or the day the open case's
    schedule gives it (moved by a late warning); None without either."""
    if cancelled_on is not None:
        return cancelled_on
    if day0 is None or policy.cancel_index is None:
        return None
    return policy.cancellation_date(day0, warned_on(policy, CaseSnapshot(day0, last_step, warned)))
