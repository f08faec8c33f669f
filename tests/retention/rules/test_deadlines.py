"""R10's deadlines as local dates: the deletion day of a cancelled account's personal data, and
the end of an issued document's retention."""

from __future__ import annotations

from datetime import date

from renewly.config.policy import load_policy
from renewly.retention.rules.deadlines import deletion_date, last_purgeable_issue_date, retention_ends


def test_r10_1_the_deletion_day_is_ninety_local_days_after_the_cancellation_day():
    assert load_policy().deletion_days == 90
    assert deletion_date(date(2026, 3, 30), 90) == date(2026, 6, 28)


def test_r10_2_retention_counts_calendar_years_from_the_issue_date():
    assert retention_ends(date(2026, 1, 1), 10) == date(2036, 1, 1)
    assert retention_ends(date(2016, 2, 29), 10) == date(2026, 2, 28)
    assert last_purgeable_issue_date(date(2026, 2, 28), 10) == date(2016, 2, 29)
    assert last_purgeable_issue_date(date(2026, 3, 1), 10) == date(2016, 3, 1)
    assert last_purgeable_issue_date(date(2036, 1, 1), 10) == date(2026, 1, 1)
