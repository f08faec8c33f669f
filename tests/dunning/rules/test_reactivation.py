"""R9.2: a temporary reactivation's window, in the account's local days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from renewly.dunning.rules.reactivation import last_day, window_days, window_end
from renewly.shared.calendar import local_midnight_utc
from renewly.shared.errors import InvalidInput


def test_r9_2_a_window_lasts_the_policy_s_days_unless_support_asks_for_others_at_least_one():
    assert window_days(None, 7) == 7
    assert window_days(3, 7) == 3
    with pytest.raises(InvalidInput, match="at least one day"):
        window_days(0, 7)


def test_r9_2_a_window_granted_today_for_seven_days_ends_at_the_end_of_the_seventh_day_after():
    assert window_end(date(2026, 4, 1), 7) == date(2026, 4, 9)  # at its midnight: 8 April is the last day


def test_r9_2_the_last_day_the_owner_reads_is_the_whole_local_day_before_the_window_s_end():
    ends_at = local_midnight_utc(date(2026, 4, 9), "Pacific/Auckland")
    assert ends_at == datetime(2026, 4, 8, 12, tzinfo=UTC)
    assert last_day(ends_at, "Pacific/Auckland") == date(2026, 4, 8)
