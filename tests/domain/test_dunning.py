"""The pure dunning decisions (R8, R9.1-R9.2, R8.8): `evaluate(policy, snapshot, today)` on the
default policy, who sees which banner, who may use the dashboard, and the preview."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from renewly.domain.accounts import AccountStatus, Role
from renewly.domain.dunning import Access, Audience, CaseSnapshot, banner_seen, dashboard_access, evaluate, preview_case
from renewly.policy import load_policy

POLICY = load_policy()
DAY0 = date(2026, 3, 1)
FAILED_1, FAILED_2, FAILED_3, WARNING, CANCEL = range(5)


def case(last_step: int = -1, attempted_on_day: int | None = 0) -> CaseSnapshot:
    """A case opened after the renewal's charge of day 0 failed, its steps taken up to `last_step`."""
    attempted = DAY0 + timedelta(days=attempted_on_day) if attempted_on_day is not None else None
    return CaseSnapshot(case_id=1, account_id=1, day0=DAY0, last_step=last_step, last_attempt_day=attempted)


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


# -- R8.1-R8.5: each step on its day ----------------------------------------------------------------

def test_r8_1_day_0_failed_e_mail_no_new_charge_no_banner():
    decision = evaluate(POLICY, case(), on_day(0))
    assert decision.steps == (FAILED_1,)
    assert decision.email == "payment_failed_1"
    # Day 0's charge is the renewal's own attempt, the one that failed: no second charge that day.
    assert not decision.request_charge
    assert decision.banner is Audience.NONE and not decision.cancel
    assert decision.next_step == FAILED_2


def test_r8_1_day_0_charge_is_requested_when_the_renewal_was_never_attempted():
    assert evaluate(POLICY, case(attempted_on_day=None), on_day(0)).request_charge


def test_r8_2_day_2_second_e_mail_and_a_charge_no_banner():
    decision = evaluate(POLICY, case(last_step=FAILED_1), on_day(2))
    assert (decision.steps, decision.email, decision.request_charge) == ((FAILED_2,), "payment_failed_2", True)
    assert decision.banner is Audience.NONE


def test_r8_3_day_4_banner_for_owner_and_admins():
    decision = evaluate(POLICY, case(last_step=FAILED_2, attempted_on_day=2), on_day(4))
    assert (decision.steps, decision.email, decision.request_charge) == ((FAILED_3,), "payment_failed_3", True)
    assert decision.banner is Audience.OWNER_AND_ADMINS


def test_r8_4_day_21_suspension_warning_banner_for_everyone():
    decision = evaluate(POLICY, case(last_step=FAILED_3, attempted_on_day=4), on_day(21))
    assert (decision.steps, decision.email, decision.request_charge) == ((WARNING,), "suspension_warning", True)
    assert decision.banner is Audience.EVERYONE and not decision.cancel


def test_r8_5_day_29_cancels_without_a_charge():
    decision = evaluate(POLICY, case(last_step=WARNING, attempted_on_day=21), on_day(29))
    assert (decision.steps, decision.email) == ((CANCEL,), "account_cancelled")
    assert decision.cancel and not decision.request_charge
    assert decision.next_step is None


@pytest.mark.parametrize("day, last_step", [(1, FAILED_1), (3, FAILED_2), (20, FAILED_3), (28, WARNING)])
def test_r8_between_steps_nothing_happens_and_the_banner_stays(day, last_step):
    decision = evaluate(POLICY, case(last_step=last_step), on_day(day))
    assert not decision.changes_anything
    assert (decision.email, decision.request_charge, decision.cancel) == (None, False, False)
    assert decision.banner is POLICY.steps[last_step].banner
    assert decision.next_step == last_step + 1


# -- R8.7: late and repeated sweeps -----------------------------------------------------------------

def test_r8_7_a_late_sweep_records_every_missed_step_but_acts_like_the_latest():
    decision = evaluate(POLICY, case(last_step=FAILED_1), on_day(25))
    assert decision.steps == (FAILED_2, FAILED_3, WARNING)
    # Only the e-mail that still makes sense: never a day-2 e-mail after the day-21 warning.
    assert (decision.email, decision.email_step) == ("suspension_warning", WARNING)
    assert decision.request_charge  # one charge for the three missed charging steps
    assert decision.banner is Audience.EVERYONE


def test_r8_7_a_late_sweep_charges_nothing_when_the_invoice_was_attempted_since_the_last_charging_step():
    # The owner's card update was tried on day 22, after the day-21 step the sweep missed.
    assert not evaluate(POLICY, case(last_step=FAILED_1, attempted_on_day=22), on_day(25)).request_charge


def test_r8_7_a_sweep_run_twice_the_same_day_does_nothing_the_second_time():
    first = evaluate(POLICY, case(last_step=-1), on_day(4))
    again = evaluate(POLICY, case(last_step=max(first.steps)), on_day(4))
    assert first.steps == (FAILED_1, FAILED_2, FAILED_3)
    assert not again.changes_anything and again.email is None and not again.request_charge


def test_r8_7_a_sweep_late_past_the_cancellation_sends_only_the_cancellation():
    decision = evaluate(POLICY, case(last_step=FAILED_3, attempted_on_day=4), on_day(40))
    assert decision.steps == (WARNING, CANCEL)
    assert (decision.email, decision.cancel) == ("account_cancelled", True)


# -- banners and access by role (R8.3-R8.5, R9.1, R9.2) -------------------------------------------------

@pytest.mark.parametrize("account_banner, role, seen", [
    ("none", Role.OWNER, "none"), ("none", Role.ADMIN, "none"), ("none", Role.AGENT, "none"),
    ("owner_and_admins", Role.OWNER, "owner_and_admins"), ("owner_and_admins", Role.ADMIN, "owner_and_admins"),
    ("owner_and_admins", Role.AGENT, "none"),
    ("everyone", Role.OWNER, "everyone"), ("everyone", Role.ADMIN, "everyone"), ("everyone", Role.AGENT, "everyone"),
])
def test_r8_3_r8_4_the_banner_a_role_sees_on_a_past_due_account(account_banner, role, seen):
    assert banner_seen(account_banner, AccountStatus.PAST_DUE, role) == seen


@pytest.mark.parametrize("role", list(Role))
def test_r8_5_every_role_sees_the_cancelled_page(role):
    assert banner_seen("everyone", AccountStatus.CANCELLED, role) == "cancelled"


@pytest.mark.parametrize("status, role, running, access", [
    (AccountStatus.ACTIVE, Role.AGENT, False, Access.FULL),
    (AccountStatus.PAST_DUE, Role.AGENT, False, Access.FULL),  # banners, but the dashboard works until day 29
    (AccountStatus.CANCELLED, Role.OWNER, False, Access.NONE),
    (AccountStatus.CANCELLED, Role.ADMIN, False, Access.NONE),
    (AccountStatus.CANCELLED, Role.AGENT, False, Access.NONE),
    (AccountStatus.CANCELLED, Role.OWNER, True, Access.BILLING_ONLY),
    (AccountStatus.CANCELLED, Role.ADMIN, True, Access.NONE),
    (AccountStatus.CANCELLED, Role.AGENT, True, Access.NONE),
    (AccountStatus.DELETED, Role.OWNER, True, Access.NONE),
])
def test_r9_1_r9_2_dashboard_access(status, role, running, access):
    assert dashboard_access(status, role, running) is access


# -- R8.8: the preview --------------------------------------------------------------------------------

def test_r8_8_preview_of_a_new_case_lists_each_coming_step_then_the_deletion():
    days = preview_case(POLICY, DAY0, -1, DAY0)
    assert [(d.day, d.date) for d in days] == [(0, DAY0), (2, on_day(2)), (4, on_day(4)), (21, on_day(21)),
                                                (29, on_day(29)), (29 + 90, on_day(29 + 90))]
    assert days[0].actions == ("charge attempt", "e-mail 'payment_failed_1' to billing contacts")
    assert "banner for owner and admins" in days[2].actions
    assert "banner for every member" in days[3].actions
    assert "charge attempt" not in days[4].actions
    assert days[4].actions[-1] == "account cancelled: nobody can use the dashboard"
    assert "personal data deleted" in days[5].actions[0]


def test_r8_8_preview_leaves_out_the_steps_already_taken():
    days = preview_case(POLICY, DAY0, FAILED_3, on_day(10))
    assert [d.day for d in days] == [21, 29, 119]


def test_r8_8_preview_of_a_cancelled_account_shows_only_its_deletion():
    cancelled_on = on_day(29)
    days = preview_case(POLICY, DAY0, len(POLICY.steps), on_day(35), cancelled_at=cancelled_on)
    assert [(d.date, d.actions[0][:21]) for d in days] == [(cancelled_on + timedelta(days=90),
                                                           "personal data deleted")]
