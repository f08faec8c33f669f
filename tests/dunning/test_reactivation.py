"""Cancelled accounts (R9.1), support's temporary reactivation (R9.2, R9.3), and refusals of bad
input through the command line: one line, exit code 2, nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member, require_access
from renewly.accounts.rules.members import Role
from renewly.adapters.db.tables import accounts, audit_log, billing_contacts, cards, outbox, payment_attempts
from renewly.adapters.db.tables import reactivations as reactivations_table
from renewly.dunning.reactivation import banners_by_role, grant_reactivation
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from tests.builders import OPERATOR, subscribed, with_card
from tests.payment_builders import run_cli, snapshot

DECLINES = "4000000000000341"
GOOD_CARD = "4242424242424242"
SUPPORT = "support@renewly.example"
OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
CONTACTS = [OWNER, "finance@acme.test"]
SUPPORT_AGENT = "support:alice"


def to(app, day: int, hour: int = 12) -> None:
    """Move the test clock, running the batches, to `hour` o'clock (UTC) on day `day` after 2026-01-01."""
    advance(app, datetime(2026, 1, 1, hour, tzinfo=UTC) + timedelta(days=day) - app.clock.now())


@pytest.fixture
def cancelled(app) -> int:
    """An account cancelled on day 29 (2026-01-30) for its unpaid renewal; the clock on day 30 at noon."""
    account_id, _ = subscribed(app, card=DECLINES)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    add_member(app, account_id, email=AGENT, role="agent", actor=OPERATOR)
    now = app.clock.now()
    with app.engine.begin() as conn:
        conn.execute(billing_contacts.insert().values(account_id=account_id, email="finance@acme.test",
                                                      status="active", requested_by="finance@acme.test",
                                                      requested_at=now, decided_at=now))
    to(app, 30)
    assert account(app, account_id).status == "cancelled"
    return account_id


def account(app, account_id: int):
    with app.engine.connect() as conn:
        return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


def access(app, account_id: int, email: str, *, billing: bool = False) -> Role:
    with app.engine.connect() as conn:
        return require_access(conn, account_id, email, app.clock.now(), support_email=SUPPORT, billing=billing)


def refusal(app, account_id: int, email: str, *, billing: bool = False) -> NotAllowed:
    with pytest.raises(NotAllowed) as refused:
        access(app, account_id, email, billing=billing)
    return refused.value


def email_kinds(app) -> list[str]:
    with app.engine.connect() as conn:
        return [payload["kind"] for payload in conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id)).scalars()
            if payload["kind"] != "invoice"]  # the dunning e-mails: not the invoices' (R4.3)


def reactivations(app) -> list[tuple]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(reactivations_table.c.granted_by, reactivations_table.c.reason, reactivations_table.c.ends_at,
                   reactivations_table.c.outcome).order_by(reactivations_table.c.id))]


def attempt_count(app) -> int:
    with app.engine.connect() as conn:
        return len(conn.execute(select(payment_attempts.c.id)).all())


def grant(app, account_id: int, days: int | None = None):
    return grant_reactivation(app, account_id, days=days, reason="owner asked by phone to pay", actor=SUPPORT_AGENT)


# -- R9.1 ----------------------------------------------------------------------------------------------

def test_r9_1_every_member_of_a_cancelled_account_is_told_why_and_how_to_ask_support(app, cancelled):
    for email in (OWNER, ADMIN, AGENT):
        for billing in (False, True):
            refused = refusal(app, cancelled, email, billing=billing)
            assert refused.code == "account_cancelled"
            assert refused.message == (f"account {cancelled} was cancelled on 2026-01-30 for an unpaid invoice; its "
                                       f"data will be deleted on 2026-04-30 unless it is paid; the owner can ask "
                                       f"{SUPPORT} for a temporary reactivation to pay it")
    assert {seen["banner"] for seen in banners_by_role(app, cancelled).values()} == {"cancelled"}


def test_r9_1_the_owner_cannot_update_the_card_of_a_cancelled_account_without_a_reactivation(app, cancelled):
    with pytest.raises(NotAllowed, match="was cancelled on 2026-01-30"):
        with_card(app, cancelled, GOOD_CARD)
    with app.engine.connect() as conn:
        assert conn.execute(select(cards.c.last4).where(cards.c.status == "active")).scalars().all() == ["0341"]


def test_r9_1_the_command_line_refuses_a_member_of_a_cancelled_account_with_the_reason(app, cancelled, monkeypatch,
                                                                                      capsys):
    refused = run_cli(app, monkeypatch, capsys, "accounts", "access", str(cancelled), "--as", AGENT)
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == (f"error: account {cancelled} was cancelled on 2026-01-30 for an unpaid invoice; its data "
                           f"will be deleted on 2026-04-30 unless it is paid; the owner can ask {SUPPORT} for a "
                           "temporary reactivation to pay it\n")


def test_r9_2_the_command_line_says_in_json_that_a_reactivated_owner_may_use_the_billing_pages(app, cancelled,
                                                                                                 monkeypatch, capsys):
    grant(app, cancelled)
    allowed = run_cli(app, monkeypatch, capsys, "accounts", "access", str(cancelled), "--as", OWNER.upper(),
                      "--billing", "--json")
    assert (allowed.code, allowed.err) == (0, "")
    assert json.loads(allowed.out) == {"account": cancelled, "member": OWNER, "role": "owner",
                                       "pages": "billing pages", "allowed": True}
    refused = run_cli(app, monkeypatch, capsys, "accounts", "access", str(cancelled), "--as", OWNER, "--json")
    assert (refused.code, refused.out) == (2, "")  # the dashboard stays closed: the reason, on stderr
    assert refused.err.startswith("error: ") and refused.err.count("\n") == 1


# -- R9.2 ----------------------------------------------------------------------------------------------

def test_r9_2_a_reactivation_opens_only_the_billing_pages_and_only_to_the_owner(app, cancelled):
    ends_at = grant(app, cancelled)
    # The policy's window, 7 days after today, to the end of the last one (the account is in UTC).
    assert (app.clock.now(), ends_at) == (datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC))
    seen = banners_by_role(app, cancelled)
    assert {role: banner["banner"] for role, banner in seen.items()} == {
        "owner": "reactivated", "admin": "cancelled", "agent": "cancelled"}
    assert seen["owner"]["text"] == ("Your account is reactivated until Feb 7, 2026 so that you can pay $68.40: update "
                                     "the card now and the next payment batch charges it.")
    assert access(app, cancelled, OWNER, billing=True) is Role.OWNER
    assert refusal(app, cancelled, OWNER).code == "billing_only"
    for email in (ADMIN, AGENT):
        assert refusal(app, cancelled, email, billing=True).code == "account_cancelled"
        assert refusal(app, cancelled, email).code == "account_cancelled"
    with pytest.raises(NotAllowed, match=r"only the account owner \(owner@acme.test\)"):
        with_card(app, cancelled, GOOD_CARD, owner=ADMIN)
    with app.engine.connect() as conn:
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.reason)
                               .where(audit_log.c.action == "reactivation.granted")).all()
    assert [tuple(row) for row in audited] == [(SUPPORT_AGENT, "owner asked by phone to pay")]


def test_r9_2_r9_3_a_card_update_during_the_window_is_retried_and_pays_the_account_back_to_active(app, cancelled):
    grant(app, cancelled)
    with_card(app, cancelled, GOOD_CARD)
    to(app, 30, hour=14)  # the next payment batch runs at 13:00

    reactivated = account(app, cancelled)
    assert (reactivated.status, reactivated.banner, reactivated.cancelled_at, reactivated.deletion_due_at) == (
        "active", "none", None, None)
    assert [outcome for *_, outcome in reactivations(app)] == ["paid"]
    for email in (OWNER, ADMIN, AGENT):
        assert access(app, cancelled, email) in (Role.OWNER, Role.ADMIN, Role.AGENT)
    assert {seen["banner"] for seen in banners_by_role(app, cancelled).values()} == {"none"}
    with app.engine.connect() as conn:
        confirmations = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email")).scalars().all()
        recovered = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "dunning.recovered")).scalars().all()
    assert [e["recipients"] for e in confirmations if e["kind"] == "payment_confirmed"] == [CONTACTS]
    assert [event["reactivated"] for event in recovered] == [True]

    to(app, 45)  # the renewal of 1 February is paid by the new card: nothing more to say
    assert email_kinds(app)[-1] == "payment_confirmed"
    assert account(app, cancelled).status == "active"


def test_r9_3_an_unpaid_window_ends_cancelled_again_and_the_deletion_date_does_not_move(app, cancelled):
    deletion_due = account(app, cancelled).deletion_due_at
    assert deletion_due == datetime(2026, 1, 30, tzinfo=UTC) + timedelta(days=90)
    sent = email_kinds(app)
    attempts_before = attempt_count(app)

    grant(app, cancelled)
    assert access(app, cancelled, OWNER, billing=True) is Role.OWNER
    with_card(app, cancelled, DECLINES)  # another card that declines
    to(app, 30, hour=14)
    assert attempt_count(app) == attempts_before + 1  # the next batch retried the unpaid invoice
    assert account(app, cancelled).status == "cancelled"

    to(app, 38)  # the window ended with day 37
    assert [outcome for *_, outcome in reactivations(app)] == ["expired"]
    after = account(app, cancelled)
    assert (after.status, after.deletion_due_at) == ("cancelled", deletion_due)
    assert refusal(app, cancelled, OWNER, billing=True).code == "account_cancelled"
    # The case stays where the cancellation left it; the owner alone was told the new card failed.
    assert email_kinds(app) == [*sent, "card_retry_declined"]


def test_r9_2_a_second_grant_while_one_runs_is_refused_and_a_later_one_keeps_the_deletion_date(app, cancelled):
    deletion_due = account(app, cancelled).deletion_due_at
    first_ends = grant(app, cancelled, days=3)
    with pytest.raises(NotAllowed, match="already has a temporary reactivation running"):
        grant(app, cancelled)
    to(app, 34)
    second_ends = grant(app, cancelled, days=2)
    assert [(ends, outcome) for *_, ends, outcome in reactivations(app)] == [(first_ends, "expired"),
                                                                             (second_ends, None)]
    assert account(app, cancelled).deletion_due_at == deletion_due


def test_r9_3_a_window_that_ended_while_no_batch_ran_is_said_to_have_ended_when_the_next_opens(app, cancelled):
    """Renewly was down when the first window ended: the grant that closes it publishes its
    reactivation.expired, as the sweep would have, before the new window's reactivation.granted."""
    grant(app, cancelled, days=1)
    advance(app, timedelta(days=4), run_batches=False)
    grant(app, cancelled, days=2)
    with app.engine.connect() as conn:
        told = [(topic, sorted(payload)) for topic, payload in conn.execute(
            select(outbox.c.topic, outbox.c.payload).where(outbox.c.topic.like("reactivation.%"))
            .order_by(outbox.c.id))]
    assert told == [("reactivation.granted", ["ends_at"]), ("reactivation.expired", ["reactivation_id"]),
                    ("reactivation.granted", ["ends_at"])]
    assert [outcome for *_, outcome in reactivations(app)] == ["expired", None]


def test_r9_2_a_reactivation_is_refused_on_an_active_account(app):
    account_id, _ = subscribed(app)
    with pytest.raises(NotAllowed, match=f"account {account_id} is active, not cancelled"):
        grant(app, account_id)
    assert reactivations(app) == []


def test_r10_1_a_reactivation_is_refused_on_a_deleted_account_with_nothing_changed(app, cancelled, monkeypatch,
                                                                                   capsys):
    to(app, 29 + 90, hour=1)  # the retention batch deletes the account on its deletion date
    assert account(app, cancelled).status == "deleted"
    before = snapshot(app)
    refused = run_cli(app, monkeypatch, capsys, "support", "reactivate", str(cancelled), "--reason", "please")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == (f"error: account {cancelled} was deleted on 2026-04-30; its data is gone and it can never "
                           "be reactivated (R10.1)\n")
    assert snapshot(app) == before


# -- bad input through the command line ------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["preview", "999"],
    ["support", "reactivate", "999", "--reason", "asked"],
    ["accounts", "banner", "999", "--member", OWNER],
    ["accounts", "access", "999", "--as", OWNER],
])
def test_unknown_account_is_refused_with_one_line_and_nothing_changed(app, command, monkeypatch, capsys):
    subscribed(app)
    before = snapshot(app)
    refused = run_cli(app, monkeypatch, capsys, *command)
    assert (refused.code, refused.out, refused.err) == (2, "", "error: no account 999\n")
    assert snapshot(app) == before


@pytest.mark.parametrize("options, message", [
    (["--reason", "  "], "error: a reactivation needs a --reason\n"),
    (["--reason", "asked", "--days", "0"], "error: a reactivation lasts at least one day (got 0)\n"),
])
def test_r9_2_a_grant_without_a_reason_or_days_is_refused(app, cancelled, options, message, monkeypatch, capsys):
    before = snapshot(app)
    refused = run_cli(app, monkeypatch, capsys, "support", "reactivate", str(cancelled), *options)
    assert (refused.code, refused.err) == (2, message)
    assert snapshot(app) == before


def test_r9_2_support_reactivate_through_the_command_line(app, cancelled, monkeypatch, capsys):
    done = run_cli(app, monkeypatch, capsys, "support", "reactivate", str(cancelled), "--reason", "asked",
                   "--days", "3")
    assert done.code == 0
    assert "the owner may use the billing pages until the end of 2026-02-03\n    (UTC)" in done.out
    assert [(actor, reason, outcome) for actor, reason, _, outcome in reactivations(app)] == [
        (SUPPORT_AGENT, "asked", None)]


def test_r9_2_events_say_what_members_see_when_a_window_opens_and_when_it_ends(app, cancelled):
    grant(app, cancelled, days=1)
    to(app, 33)
    with app.engine.connect() as conn:
        told = [payload["banners"] for payload in conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == "account.dunning_state").order_by(outbox.c.id)).scalars()]
    cancelled_page = {"owner": "cancelled", "admin": "cancelled", "agent": "cancelled"}
    assert told[-3:] == [cancelled_page, {"owner": "reactivated", "admin": "cancelled", "agent": "cancelled"},
                         cancelled_page]
