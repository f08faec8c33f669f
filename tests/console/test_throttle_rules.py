"""The sign-in throttle's rule: after five refusals within 15 minutes a key waits, 1, 2, 4, 8,
then 15 minutes at most after its last refusal; never longer, so the real user gets in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from renewly.console.rules.throttle import LONGEST_WAIT, WINDOW, retry_at, wait_after

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def minutes_ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=minute) for minute in minutes]


def test_four_refusals_do_not_slow_anyone_down():
    assert retry_at(minutes_ago(0, 0, 0, 0), NOW) is None


def test_the_fifth_refusal_makes_the_key_wait_a_minute_after_it():
    assert retry_at(minutes_ago(0, 1, 2, 3, 4), NOW) == NOW + timedelta(minutes=1)
    assert retry_at(minutes_ago(1, 2, 3, 4, 5), NOW) is None  # that minute has passed


def test_the_wait_grows_with_each_refusal_up_to_the_window():
    assert [wait_after(failures) for failures in range(4, 11)] == [
        timedelta(0), *(timedelta(minutes=minutes) for minutes in (1, 2, 4, 8, 15, 15))]


def test_refusals_older_than_the_window_are_not_counted():
    assert retry_at(minutes_ago(0, 1, 2, 3, 15), NOW) is None


@given(st.lists(st.integers(min_value=0, max_value=3 * 60 * 60), max_size=40))
def test_no_key_ever_waits_longer_than_the_window_after_its_last_refusal(seconds_ago):
    failures = [NOW - timedelta(seconds=seconds) for seconds in seconds_ago]
    until = retry_at(failures, NOW)
    if until is not None:
        assert NOW < until <= max(failures) + LONGEST_WAIT <= NOW + WINDOW
