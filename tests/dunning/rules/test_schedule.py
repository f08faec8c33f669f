"""The dunning schedule (R8): `evaluate(policy, snapshot, today)` on the default policy, the
minimum warning before a cancellation, and where a case stands in a policy edited since."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from renewly.config.policy import load_policy
from renewly.dunning.rules.banners import Audience
from renewly.dunning.rules.schedule import (
    CaseSnapshot,
    evaluate,
    needs_charge,
    next_step_date,
    place,
)

POLICY = load_policy()
DAY0 = date(2026, 3, 1)
FAILED_1, FAILED_2, FAILED_3, WARNING, CANCEL = range(5)


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


def case(last_step: int = -1, warned_on_day: int | None = None) -> CaseSnapshot:
    """A case opened after the renewal's charge of day 0 failed, its steps taken up to `last_step`."""
    return CaseSnapshot(day0=DAY0, last_step=last_step,
                        warned_on=on_day(warned_on_day) if warned_on_day is not None else None)


# -- R8.1-R8.5: each step on its day ----------------------------------------------------------------

def test_r8_1_day_0_tells_the_failure_of_the_renewal_s_own_charge_without_charging_again():
    decision = evaluate(POLICY, case(), on_day(0))
    assert (decision.steps, decision.notice_step, decision.cancel) == ((FAILED_1,), FAILED_1, False)
    assert POLICY.steps[FAILED_1].email == "payment_failed_1"
    # Day 0's charge is the renewal's own attempt, the one that failed: told at once, no second charge.
    assert decision.charge_since == on_day(0)
    assert not needs_charge(decision.charge_since, last_attempt_day=on_day(0))
    assert decision.next_step == FAILED_2


def test_r8_1_day_0_charges_first_when_the_renewal_was_never_attempted():
    assert needs_charge(evaluate(POLICY, case(), on_day(0)).charge_since, last_attempt_day=None)


def test_r8_2_day_2_charges_then_tells():
    decision = evaluate(POLICY, case(last_step=FAILED_1), on_day(2))
    assert (decision.steps, decision.notice_step, decision.charge_since) == ((FAILED_2,), FAILED_2, on_day(2))
    assert needs_charge(decision.charge_since, last_attempt_day=on_day(0))
    assert POLICY.steps[FAILED_2].banner is Audience.NONE


def test_r8_3_day_4_banner_for_owner_and_admins():
    decision = evaluate(POLICY, case(last_step=FAILED_2), on_day(4))
    assert (decision.steps, decision.charge_since) == ((FAILED_3,), on_day(4))
    assert POLICY.steps[decision.notice_step].banner is Audience.OWNER_AND_ADMINS


def test_r8_4_day_21_suspension_warning_banner_for_everyone():
    decision = evaluate(POLICY, case(last_step=FAILED_3), on_day(21))
    assert (decision.steps, decision.charge_since, decision.cancel) == ((WARNING,), on_day(21), False)
    assert POLICY.steps[decision.notice_step].banner is Audience.EVERYONE
    assert decision.next_step == CANCEL
    # The cancellation is scheduled by the warning's notice: before it, nothing says when.
    assert next_step_date(POLICY, DAY0, CANCEL, warned=None) is None
    assert next_step_date(POLICY, DAY0, CANCEL, warned=on_day(21)) == on_day(29)


def test_r8_5_day_29_cancels_without_a_charge():
    decision = evaluate(POLICY, case(last_step=WARNING, warned_on_day=21), on_day(29))
    assert (decision.steps, decision.notice_step, decision.cancel) == ((CANCEL,), CANCEL, True)
    assert decision.charge_since is None
    assert decision.next_step is None


@pytest.mark.parametrize("day, last_step", [(1, FAILED_1), (3, FAILED_2), (20, FAILED_3), (28, WARNING)])
def test_r8_between_steps_nothing_happens(day, last_step):
    decision = evaluate(POLICY, case(last_step=last_step, warned_on_day=21 if last_step == WARNING else None),
                        on_day(day))
    assert not decision.changes_anything
    assert (decision.notice_step, decision.charge_since, decision.cancel) == (None, None, False)
    assert decision.next_step == last_step + 1


# -- R8.7: late and repeated sweeps -----------------------------------------------------------------

def test_r8_7_a_late_sweep_records_every_missed_step_but_acts_like_the_latest():
    decision = evaluate(POLICY, case(last_step=FAILED_1), on_day(25))
    assert decision.steps == (FAILED_2, FAILED_3, WARNING)
    # Only the notice that still makes sense: never a day-2 e-mail after the day-21 warning.
    assert decision.notice_step == WARNING
    # One charge for the three missed charging steps, unless a charge came since the latest one's day.
    assert decision.charge_since == on_day(21)
    assert needs_charge(decision.charge_since, last_attempt_day=on_day(4))
    assert not needs_charge(decision.charge_since, last_attempt_day=on_day(22))  # the owner's new card, tried


def test_r8_7_a_sweep_run_twice_the_same_day_does_nothing_the_second_time():
    first = evaluate(POLICY, case(last_step=-1), on_day(4))
    again = evaluate(POLICY, case(last_step=first.steps[-1]), on_day(4))
    assert first.steps == (FAILED_1, FAILED_2, FAILED_3)
    assert not again.changes_anything and again.notice_step is None and again.charge_since is None


# -- the minimum warning: no cancellation without the warning, given long enough before ---------------

def test_r8_the_default_minimum_warning_is_the_schedule_s_gap():
    assert (POLICY.minimum_warning_days, POLICY.warning_index, POLICY.cancel_index) == (8, WARNING, CANCEL)


def test_r8_a_sweep_late_past_the_cancellation_gives_the_warning_and_moves_the_cancellation():
    decision = evaluate(POLICY, case(last_step=FAILED_3), on_day(40))
    assert (decision.steps, decision.notice_step, decision.cancel) == ((WARNING,), WARNING, False)
    assert decision.next_step == CANCEL
    # Warned today, day 40: cancelled eight days later, not now.
    assert next_step_date(POLICY, DAY0, CANCEL, warned=on_day(40)) == on_day(48)
    warned = replace(case(last_step=WARNING), warned_on=on_day(40))
    assert not evaluate(POLICY, warned, on_day(47)).changes_anything
    assert evaluate(POLICY, warned, on_day(48)).cancel


def test_r8_a_warning_given_a_day_late_moves_the_cancellation_a_day():
    warned_late = case(last_step=WARNING, warned_on_day=22)
    assert not evaluate(POLICY, warned_late, on_day(29)).changes_anything
    assert evaluate(POLICY, warned_late, on_day(30)).steps == (CANCEL,)
    assert POLICY.cancellation_date(DAY0, on_day(22)) == on_day(30)
    assert POLICY.cancellation_date(DAY0, on_day(21)) == on_day(29)  # on time: the schedule's own day


def test_r8_a_warning_taken_whose_notice_waits_for_its_charge_holds_the_cancellation():
    # Taken on day 21, its charge still unanswered on day 29: nobody was warned yet.
    assert not evaluate(POLICY, case(last_step=WARNING), on_day(29)).changes_anything


def test_r8_without_a_minimum_warning_a_late_sweep_cancels_at_once():
    policy = replace(POLICY, minimum_warning_days=0)
    decision = evaluate(policy, case(last_step=FAILED_3), on_day(40))
    assert (decision.steps, decision.notice_step, decision.cancel) == ((WARNING, CANCEL), CANCEL, True)
    assert decision.charge_since is None  # a cancelling decision charges nothing (R9)


# -- a case knows its step by name: a new policy's place for it ------------------------------------

def without_step(policy, name: str):
    return replace(policy, steps=tuple(step for step in policy.steps if step.name != name))


def test_a_case_stands_at_its_step_by_name_wherever_the_policy_moved_it():
    added = replace(POLICY, steps=(POLICY.steps[0], replace(POLICY.steps[1], name="courtesy_call", day=1),
                                   *POLICY.steps[1:]))
    assert place(added, "payment_failed_2", 2, warned=False) == 2  # position 1 in the default, 2 now
    assert place(POLICY, None, None, warned=False) == -1  # no step taken yet


def test_a_case_whose_step_was_removed_goes_on_after_the_steps_of_that_day_or_earlier():
    # Past payment_failed_3 (day 4) when it was removed: after payment_failed_2 (day 2), so the
    # next step is the day-21 warning, and no earlier e-mail is sent late.
    policy = without_step(POLICY, "payment_failed_3")
    at = place(policy, "payment_failed_3", 4, warned=False)
    assert policy.steps[at].name == "payment_failed_2"
    decision = evaluate(policy, case(last_step=at), on_day(5))
    assert not decision.changes_anything and policy.steps[decision.next_step].name == "suspension_warning"


def test_a_case_whose_step_was_renamed_is_past_the_new_step_of_the_same_day():
    policy = replace(POLICY, steps=tuple(replace(step, name="second_try") if step.name == "payment_failed_2"
                                         else step for step in POLICY.steps))
    assert policy.steps[place(policy, "payment_failed_2", 2, warned=False)].name == "second_try"


def test_a_case_never_warned_is_not_placed_past_a_warning_moved_before_its_step():
    # The warning moved from day 21 to day 3, day 4 removed: a case past day 4 was never warned,
    # and stands before the warning (given at the next sweep); one that was warned stands past it.
    early = replace(without_step(POLICY, "payment_failed_3"), steps=tuple(
        replace(step, day=3) if step.name == "suspension_warning" else step
        for step in without_step(POLICY, "payment_failed_3").steps))
    assert early.steps[place(early, "payment_failed_3", 4, warned=False)].name == "payment_failed_2"
    assert early.steps[place(early, "payment_failed_3", 4, warned=True)].name == "suspension_warning"


def test_a_case_whose_only_step_so_far_was_removed_starts_at_the_first_later_one():
    policy = without_step(POLICY, "payment_failed_1")
    assert place(policy, "payment_failed_1", 0, warned=False) == -1
    assert evaluate(policy, case(last_step=-1), on_day(1)).steps == ()  # payment_failed_2 is on day 2


def test_the_open_cases_are_rescheduled_for_a_new_schedule_not_a_new_version_or_text():
    assert replace(POLICY, version="v2").schedule_key == POLICY.schedule_key
    assert without_step(POLICY, "payment_failed_3").schedule_key != POLICY.schedule_key
    assert replace(POLICY, minimum_warning_days=3).schedule_key != POLICY.schedule_key
