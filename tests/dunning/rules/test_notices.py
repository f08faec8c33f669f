"""What a step's notice does to the account (R8.3-R8.5, R10.1) and what it says (R8.4)."""

from __future__ import annotations

from datetime import date, timedelta

from renewly.config.policy import load_policy
from renewly.dunning.rules.notices import (
    CaseInvoice,
    account_after_notice,
    announced_cancellation,
    cancellation_date,
    notice_reason,
)
from renewly.payments.rules.charges import NO_CARD

POLICY = load_policy()
DAY0 = date(2026, 3, 1)
FAILED_1, FAILED_2, FAILED_3, WARNING, CANCEL = range(5)


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


def test_r8_3_a_step_s_notice_makes_an_active_account_past_due_with_the_step_s_banner():
    after = account_after_notice(POLICY.steps[FAILED_3], "active", "none", on_day(4), 90)
    assert (after.status, after.banner, after.changed, after.cancelled) == (
        "past_due", "owner_and_admins", True, False)


def test_a_notice_that_changes_neither_status_nor_banner_says_nothing_changed():
    after = account_after_notice(POLICY.steps[FAILED_2], "past_due", "none", on_day(2), 90)
    assert (after.status, after.banner, after.changed) == ("past_due", "none", False)


def test_r8_5_r10_1_the_cancellation_cancels_today_and_sets_the_deletion_day():
    after = account_after_notice(POLICY.steps[CANCEL], "past_due", "everyone", on_day(29), 90)
    assert (after.status, after.cancelled, after.deletion_on) == ("cancelled", True, on_day(29 + 90))


def test_r8_4_the_warning_announces_the_cancellation_the_minimum_warning_after_it_is_given():
    assert cancellation_date(POLICY, DAY0, WARNING, on_day(21)) == on_day(29)
    assert cancellation_date(POLICY, DAY0, WARNING, on_day(23)) == on_day(23 + POLICY.minimum_warning_days)
    assert cancellation_date(POLICY, DAY0, CANCEL, on_day(30)) == on_day(30)


def test_the_notice_says_no_card_or_the_latest_decline():
    invoices = [CaseInvoice(1, "A", 100, "EUR", DAY0, False, "expired_card", attempt_id=3),
                CaseInvoice(2, "B", 100, "EUR", DAY0, False, None, attempt_id=5)]
    assert notice_reason(invoices, has_card=False) == NO_CARD
    assert notice_reason(invoices, has_card=True) == "expired_card"  # the only decline


def test_r8_4_r9_2_a_banner_names_the_cancellation_day_it_happened_or_the_one_to_come():
    assert announced_cancellation(POLICY, on_day(30), DAY0, CANCEL, on_day(22)) == on_day(30)
    assert announced_cancellation(POLICY, None, DAY0, FAILED_3, None) == on_day(29)
    assert announced_cancellation(POLICY, None, DAY0, WARNING, on_day(23)) == on_day(23 + POLICY.minimum_warning_days)
    assert announced_cancellation(POLICY, None, None, -1, None) is None  # no open case
