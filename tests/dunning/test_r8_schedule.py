"""The whole R8 table, day by day on the test clock, for each role.

One account whose renewal of 2026-01-01 (day 0) is declined and never paid; an owner, an admin
and an agent; billing contacts: the owner, an approved contact, and a request the owner never
approved. Every day at noon the test looks at what each member sees and may do. The timeline
is observed once per engine (a module fixture keeps only plain data); each test checks one row
of the table against it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member, load_account, require_access
from renewly.adapters.db.tables import billing_contacts, dunning_steps, outbox, payment_attempts
from renewly.dunning.reactivation import banner_for_member
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from tests.builders import OPERATOR, subscribed
from tests.conftest import START, Databases

DAY0 = date(2026, 1, 1)
LAST_DAY = 35
DECLINES = "4000000000000341"
MEMBERS = {"owner": "owner@acme.test", "admin": "admin@acme.test", "agent": "agent@acme.test"}
CONTACTS = ["owner@acme.test", "finance@acme.test"]  # every billing contact, the owner first
SUPPORT = "support@renewly.example"


@dataclass
class Timeline:
    banners: dict[str, list[str]] = field(default_factory=dict)  # role -> the banner seen on each day
    texts: dict[tuple[str, int], str] = field(default_factory=dict)  # (role, day) -> banner text
    access: dict[str, list[str | None]] = field(default_factory=dict)  # role -> None (allowed) or the refusal
    statuses: list[str] = field(default_factory=list)
    emails: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (day, kind, recipients)
    attempt_days: list[int] = field(default_factory=list)
    steps: list[tuple[str, int, str]] = field(default_factory=list)  # (name, day taken, policy version)
    policy_version: str = ""


def day_of(instant) -> int:
    return (instant.date() - DAY0).days


def observe(app) -> Timeline:
    account_id, _ = subscribed(app, card=DECLINES)
    for role in ("admin", "agent"):
        add_member(app, account_id, email=MEMBERS[role], role=role, actor=OPERATOR)
    with app.engine.begin() as conn:
        conn.execute(billing_contacts.insert(), [
            {"account_id": account_id, "email": "finance@acme.test", "status": "active",
             "requested_by": "finance@acme.test", "requested_at": START, "decided_at": START},
            {"account_id": account_id, "email": "pending@acme.test", "status": "requested",
             "requested_by": "pending@acme.test", "requested_at": START, "decided_at": None}])
    seen = Timeline(banners={role: [] for role in MEMBERS}, access={role: [] for role in MEMBERS},
                    policy_version=app.policy.version)
    advance(app, timedelta(hours=12))
    for day in range(LAST_DAY + 1):
        if day:
            advance(app, timedelta(days=1))
        now = app.clock.now()
        for role, email in MEMBERS.items():
            banner = banner_for_member(app, account_id, email)
            seen.banners[role].append(banner["banner"])
            seen.texts[(role, day)] = banner["text"]
            with app.engine.connect() as conn:
                try:
                    require_access(conn, account_id, email, now, support_email=SUPPORT)
                    seen.access[role].append(None)
                except NotAllowed as refused:
                    seen.access[role].append(refused.message)
        with app.engine.connect() as conn:
            seen.statuses.append(load_account(conn, account_id).status)
    with app.engine.connect() as conn:
        for at, payload in conn.execute(select(outbox.c.created_at, outbox.c.payload)
                                        .where(outbox.c.topic == "email").order_by(outbox.c.id)):
            if payload["kind"] != "invoice":  # the dunning e-mails: not the invoices' (R4.3)
                seen.emails.append((day_of(at), payload["kind"], payload["recipients"]))
        seen.attempt_days = [day_of(at) for at in conn.execute(
            select(payment_attempts.c.created_at).order_by(payment_attempts.c.id)).scalars()]
        seen.steps = [(name, day_of(at), version) for name, at, version in conn.execute(
            select(dunning_steps.c.name, dunning_steps.c.taken_at, dunning_steps.c.policy_version)
            .order_by(dunning_steps.c.id))]
    return seen


# Under `make test` (pytest-xdist), the tests of this module run in one process: their module
# fixture (the timeline, observed once per engine) would otherwise be made again in each.
pytestmark = pytest.mark.xdist_group("r8-schedule")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def timeline(request, tmp_path_factory, sqlite_template) -> Timeline:
    with pytest.MonkeyPatch.context() as patch:  # no RENEWLY_* from the shell, as for every test
        for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
            patch.delenv(name)
        databases = Databases(request, tmp_path_factory.mktemp("r8"), sqlite_template)
        try:
            return observe(databases.fresh_app(request.param))
        finally:
            databases.dispose()


def days(first: int, last: int = LAST_DAY) -> range:
    return range(first, last + 1)


def banners_on(timeline: Timeline, role: str, which: range) -> set[str]:
    return {timeline.banners[role][day] for day in which}


# -- banners, role by role ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", list(MEMBERS))
def test_r8_1_r8_2_no_banner_on_days_0_to_3(timeline, role):
    assert banners_on(timeline, role, days(0, 3)) == {"none"}


def test_r8_3_from_day_4_owner_and_admins_see_a_banner_agents_do_not(timeline):
    assert banners_on(timeline, "owner", days(4, 20)) == {"owner_and_admins"}
    assert banners_on(timeline, "admin", days(4, 20)) == {"owner_and_admins"}
    assert banners_on(timeline, "agent", days(4, 20)) == {"none"}
    assert timeline.texts[("admin", 4)] == ("Your last payment failed. The account owner must update the card to "
                                            "avoid cancellation.")
    assert timeline.texts[("agent", 4)] == ""


@pytest.mark.parametrize("role", list(MEMBERS))
def test_r8_4_from_day_21_every_member_sees_the_banner_with_the_cancellation_date(timeline, role):
    assert banners_on(timeline, role, days(21, 28)) == {"everyone"}
    assert timeline.texts[(role, 21)] == ("This account will be cancelled on Jan 30, 2026 unless its invoice is "
                                          "paid. Ask the account owner to update the card.")


@pytest.mark.parametrize("role", list(MEMBERS))
def test_r8_5_from_day_29_every_member_sees_the_cancelled_page_and_cannot_use_the_dashboard(timeline, role):
    assert banners_on(timeline, role, days(29)) == {"cancelled"}
    assert SUPPORT in timeline.texts[(role, 29)]
    assert timeline.access[role][:29] == [None] * 29  # banners, but the dashboard works until day 29
    for refusal in timeline.access[role][29:]:
        assert refusal.startswith("account 1 was cancelled on 2026-01-30 for an unpaid invoice")
        assert f"ask {SUPPORT} for a temporary reactivation" in refusal


@pytest.mark.parametrize("role", list(MEMBERS))
def test_r8_the_banner_of_each_role_day_by_day(timeline, role):
    sees_from_day_4 = "owner_and_admins" if role in ("owner", "admin") else "none"
    expected = ["none"] * 4 + [sees_from_day_4] * 17 + ["everyone"] * 8 + ["cancelled"] * (LAST_DAY - 28)
    assert timeline.banners[role] == expected


def test_r8_the_account_is_past_due_from_day_0_and_cancelled_from_day_29(timeline):
    assert timeline.statuses == ["past_due"] * 29 + ["cancelled"] * (LAST_DAY - 28)


# -- e-mails, charges, policy version ----------------------------------------------------------------------

def test_r8_each_step_s_e_mail_goes_once_to_every_billing_contact_on_its_day(timeline):
    assert timeline.emails == [(0, "payment_failed_1", CONTACTS), (2, "payment_failed_2", CONTACTS),
                               (4, "payment_failed_3", CONTACTS), (21, "suspension_warning", CONTACTS),
                               (29, "account_cancelled", CONTACTS)]


def test_r8_a_charge_attempt_on_days_0_2_4_and_21_and_none_on_day_29(timeline):
    assert timeline.attempt_days == [0, 2, 4, 21]


def test_r8_every_step_is_recorded_once_on_its_day_with_the_policy_version(timeline):
    assert timeline.steps == [(name, day, "r8-default-2026-11") for name, day in [
        ("payment_failed_1", 0), ("payment_failed_2", 2), ("payment_failed_3", 4), ("suspension_warning", 21),
        ("account_cancelled", 29)]]
    assert timeline.policy_version == "r8-default-2026-11"
