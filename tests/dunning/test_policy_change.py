"""A new policy and the cases already open (issue 9, item 5): a case knows its steps by name, a
step removed while cases are past it stops nothing, and no notice is given twice or late."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from sqlalchemy import select

from renewly.adapters.db.tables import dunning_cases, dunning_steps, payment_retries
from renewly.batches.parking import list_problems
from renewly.shared.calendar import local_date
from tests.dunning.test_sweep import account_row, declined_team, kinds, to_day


def without(policy, *names: str):
    return replace(policy, version=f"{policy.version}-without-{'-'.join(names)}",
                   steps=tuple(step for step in policy.steps if step.name not in names))


def steps_taken(app) -> list[tuple[str, date, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(dunning_steps.c.name, dunning_steps.c.taken_at, dunning_steps.c.policy_version)
                            .order_by(dunning_steps.c.id)).all()
    return [(name, local_date(at, "UTC"), version) for name, at, version in rows]


def test_r8_removing_the_steps_a_case_is_past_goes_on_at_the_next_later_step_without_repeating(app):
    default = app.policy
    account_id = declined_team(app)
    to_day(app, 5)  # payment_failed_3 (day 4) taken
    assert kinds(app, account_id) == ["payment_failed_1", "payment_failed_2", "payment_failed_3"]

    # The operator removes days 2 and 4: the case was past both (a position the list no longer has).
    app.policy = without(default, "payment_failed_2", "payment_failed_3")
    to_day(app, 30)

    assert list_problems(app) == []  # nothing parked, nothing failed
    assert kinds(app, account_id) == ["payment_failed_1", "payment_failed_2", "payment_failed_3",
                                      "suspension_warning", "account_cancelled"]
    assert [(name, day) for name, day, _ in steps_taken(app)][3:] == [
        ("suspension_warning", date(2026, 1, 22)), ("account_cancelled", date(2026, 1, 30))]
    assert {version for *_, version in steps_taken(app)[3:]} == {app.policy.version}
    assert account_row(app, account_id).status == "cancelled"


def test_r8_a_renamed_step_is_not_given_again(app):
    account_id = declined_team(app)
    to_day(app, 3)  # payment_failed_2 (day 2) taken
    app.policy = replace(app.policy, version="renamed", steps=tuple(
        replace(step, name="second_try") if step.name == "payment_failed_2" else step for step in app.policy.steps))
    to_day(app, 5)
    assert kinds(app, account_id) == ["payment_failed_1", "payment_failed_2", "payment_failed_3"]
    with app.engine.connect() as conn:
        assert conn.execute(select(dunning_cases.c.last_step_name)).scalar_one() == "payment_failed_3"


def test_r8_a_case_past_the_warning_when_a_minimum_warning_is_added_is_cancelled_that_long_after_the_change(app):
    default = app.policy
    app.policy = replace(default, version="no-minimum", minimum_warning_days=0)
    account_id = declined_team(app)
    to_day(app, 22)  # warned on day 21, without a warning day recorded (no minimum then)
    assert kinds(app, account_id)[-1] == "suspension_warning"

    # A minimum warning of 8 days: counted from the sweep that sees the new policy (day 22), not
    # from the warning e-mail of day 21, whose day was not recorded.
    app.policy = default
    to_day(app, 29)
    assert account_row(app, account_id).status == "past_due"  # not cancelled early (day 29 as scheduled)
    to_day(app, 31)
    account = account_row(app, account_id)
    assert (account.status, account.cancelled_at) == ("cancelled", datetime(2026, 1, 31, tzinfo=UTC))
    assert kinds(app, account_id).count("suspension_warning") == 1
    assert list_problems(app) == []


def test_r8_a_warning_moved_before_the_step_a_case_is_past_is_still_given_before_the_cancellation(app):
    default = app.policy
    account_id = declined_team(app)
    to_day(app, 5)  # payment_failed_3 (day 4) taken; not warned
    early = without(default, "payment_failed_3")
    app.policy = replace(early, steps=tuple(replace(step, day=3) if step.name == "suspension_warning" else step
                                            for step in early.steps))
    to_day(app, 6)  # the warning at the next sweep, 6 January: the cancellation 8 days later at the earliest
    assert kinds(app, account_id)[-1] == "suspension_warning"
    with app.engine.connect() as conn:
        case = conn.execute(select(dunning_cases.c.last_step_name, dunning_cases.c.warned_at,
                                   dunning_cases.c.next_step_at)).one()
    assert case.last_step_name == "suspension_warning" and case.warned_at is not None
    assert case.next_step_at == datetime(2026, 1, 30, tzinfo=UTC)  # day 29, more than 8 days after
    to_day(app, 30)
    assert kinds(app, account_id)[-2:] == ["suspension_warning", "account_cancelled"]
    assert account_row(app, account_id).status == "cancelled"


def test_r8_a_step_taken_already_that_a_new_policy_moves_later_parks_the_case_with_its_reason(app):
    default = app.policy
    parked_one = declined_team(app)
    to_day(app, 5)  # payment_failed_2 (day 2) and payment_failed_3 (day 4) taken
    # payment_failed_3 gone, payment_failed_2 moved to day 10: after payment_failed_1, the case
    # would take payment_failed_2 a second time.
    moved = without(default, "payment_failed_3")
    app.policy = replace(moved, steps=tuple(replace(step, day=10) if step.name == "payment_failed_2" else step
                                            for step in moved.steps))
    to_day(app, 12)
    [problem] = list_problems(app)
    assert (problem["batch"], problem["subject"]) == ("dunning", "dunning_case")
    assert "uq_dunning_steps_case_name" in problem["reason"] or "UNIQUE" in problem["reason"]
    assert kinds(app, parked_one) == ["payment_failed_1", "payment_failed_2", "payment_failed_3"]


def test_a_step_name_of_the_longest_length_is_taken_and_charged_on_both_engines(app):
    longest = "a" * 64
    app.policy = replace(app.policy, version="long-names", steps=tuple(
        replace(step, name=longest) if step.name == "payment_failed_2" else step for step in app.policy.steps))
    declined_team(app)
    to_day(app, 3)
    assert [name for name, *_ in steps_taken(app)] == ["payment_failed_1", longest]
    with app.engine.connect() as conn:
        reasons = conn.execute(select(payment_retries.c.reason)).scalars().all()
    assert reasons == [f"dunning:1:{longest}"]
