"""R8.8: the preview of a case, day by day, in words."""

from __future__ import annotations

from datetime import date, timedelta

from renewly.config.policy import load_policy
from renewly.dunning.rules.preview import preview_case

POLICY = load_policy()
DAY0 = date(2026, 3, 1)
FAILED_3, WARNING = 2, 3


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


def test_r8_8_preview_of_a_new_case_lists_each_coming_step_then_the_deletion():
    days = preview_case(POLICY, DAY0, -1, DAY0)
    assert [(d.day, d.date) for d in days] == [(0, DAY0), (2, on_day(2)), (4, on_day(4)), (21, on_day(21)),
                                                (29, on_day(29)), (29 + 90, on_day(29 + 90))]
    assert days[0].actions == ("charge attempt", "e-mail 'payment_failed_1' to billing contacts if it fails")
    assert "banner for owner and admins" in days[2].actions
    assert "banner for every member" in days[3].actions
    assert "charge attempt" not in days[4].actions
    assert days[4].actions[-1] == "account cancelled: nobody can use the dashboard"
    assert "personal data deleted" in days[5].actions[0]


def test_r8_8_preview_leaves_out_the_steps_already_taken():
    days = preview_case(POLICY, DAY0, FAILED_3, on_day(10))
    assert [d.day for d in days] == [21, 29, 119]


def test_r8_8_preview_of_a_late_warning_shows_the_moved_cancellation():
    days = preview_case(POLICY, DAY0, WARNING, on_day(23), warned=on_day(22))
    assert [(d.day, d.date) for d in days] == [(30, on_day(30)), (120, on_day(120))]


def test_r8_8_preview_of_a_warning_not_given_yet_and_overdue_gives_it_today():
    days = preview_case(POLICY, DAY0, FAILED_3, on_day(25))
    assert [d.date for d in days] == [on_day(25), on_day(33), on_day(123)]


def test_r8_8_preview_of_a_cancelled_account_shows_only_its_deletion():
    cancelled_on = on_day(29)
    days = preview_case(POLICY, DAY0, len(POLICY.steps), on_day(35), cancelled_on=cancelled_on)
    assert [(d.date, d.actions[0][:21]) for d in days] == [(cancelled_on + timedelta(days=90),
                                                           "personal data deleted")]
