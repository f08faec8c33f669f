"""Who may use the dashboard (R9.1, R9.2): everyone while past due, nobody once cancelled, but
the owner's billing pages during a temporary reactivation."""

from __future__ import annotations

import pytest

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.dunning.rules.access import Access, dashboard_access, refusal


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


@pytest.mark.parametrize("status, access, billing, refused", [
    (AccountStatus.PAST_DUE, Access.FULL, False, None),
    (AccountStatus.CANCELLED, Access.NONE, True, "account_cancelled"),
    (AccountStatus.CANCELLED, Access.BILLING_ONLY, True, None),
    (AccountStatus.CANCELLED, Access.BILLING_ONLY, False, "billing_only"),
    (AccountStatus.DELETED, Access.NONE, True, "account_deleted"),
])
def test_r9_1_r9_2_r10_1_why_a_member_is_refused_a_page(status, access, billing, refused):
    assert refusal(status, access, billing=billing) == refused
