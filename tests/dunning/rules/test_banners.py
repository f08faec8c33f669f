"""Dunning banners (R8.3-R8.5, R9.2): which banner each role sees, and the events that say it."""

from __future__ import annotations

import pytest

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.dunning.rules.banners import Severity, banner_in_words, banner_seen, banner_severity, banners_seen


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


def test_r9_2_during_a_reactivation_the_owner_sees_what_to_do_and_the_others_the_cancelled_page():
    assert banners_seen("everyone", AccountStatus.CANCELLED, reactivation_running=True) == {
        "owner": "reactivated", "admin": "cancelled", "agent": "cancelled"}


def test_r8_events_say_what_each_role_sees():
    assert banners_seen("owner_and_admins", AccountStatus.PAST_DUE) == {
        "owner": "owner_and_admins", "admin": "owner_and_admins", "agent": "none"}
    assert banners_seen("everyone", AccountStatus.CANCELLED) == {
        "owner": "cancelled", "admin": "cancelled", "agent": "cancelled"}


def test_a_banner_reads_as_words_in_the_readers_language_not_as_its_policy_code():
    assert banner_in_words("owner_and_admins") == "payment failed warning"
    assert banner_in_words("everyone", "fr") == "avertissement d'annulation"
    assert banner_in_words("reactivated") == "reactivation notice (billing pages only)"


def test_a_banner_code_the_catalogue_does_not_know_still_reads_as_words():
    assert banner_in_words("grace_period") == "grace period"


@pytest.mark.parametrize("seen, severity", [
    ("none", None), ("owner_and_admins", Severity.WARNING), ("everyone", Severity.CRITICAL),
    ("cancelled", Severity.CRITICAL), ("reactivated", Severity.CRITICAL), ("deleted", Severity.CRITICAL),
])
def test_r8_3_r8_4_the_failed_payment_banner_warns_and_every_later_one_is_critical(seen, severity):
    assert banner_severity(seen) == severity
