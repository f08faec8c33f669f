"""A new policy and the open cases (R8 by name): what it changes for each, if nothing is paid."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from renewly.config.policy import load_policy
from renewly.dunning.rules.policy_change import OpenCase, move_under

POLICY = load_policy()
DAY0 = date(2026, 3, 1)


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


def without_step(policy, name: str):
    return replace(policy, steps=tuple(step for step in policy.steps if step.name != name))


def open_case(last_step: str | None, last_day: int | None, awaiting: str | None = None) -> OpenCase:
    return OpenCase(day0=DAY0, last_step=last_step, last_step_day=last_day, warned_on=None, awaiting_step=awaiting)


def test_a_new_policy_moves_a_case_whose_steps_to_come_change_or_whose_step_is_gone():
    same = move_under(POLICY, replace(POLICY, version="v2"), open_case("payment_failed_2", 2), on_day(3))
    assert not same.moves  # another version, the same steps by name and date: nothing moves
    gone = move_under(POLICY, without_step(POLICY, "payment_failed_2"), open_case("payment_failed_2", 2), on_day(3))
    assert (gone.moves, gone.last_step_gone, gone.after) == (True, True, "payment_failed_1")
    assert gone.was == gone.now  # the same days ahead: listed all the same, its step is gone


def test_a_waiting_notice_whose_step_is_gone_is_reported_dropped():
    move = move_under(POLICY, without_step(POLICY, "payment_failed_3"),
                      open_case("payment_failed_3", 4, awaiting="payment_failed_3"), on_day(5))
    assert move.notice_dropped and move.moves


def test_a_step_moved_before_today_is_due_at_once():
    earlier = replace(POLICY, steps=tuple(replace(step, day=3) if step.name == "payment_failed_3" else step
                                          for step in POLICY.steps))
    move = move_under(POLICY, earlier, open_case("payment_failed_2", 2), on_day(3))
    assert move.due_at_once == ("payment_failed_3",)
    assert move.now[0] == ("payment_failed_3", on_day(3)) and move.was[0] == ("payment_failed_3", on_day(4))
