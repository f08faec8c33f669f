"""Dunning from the operator's command line: a daily cron of `renewly run` tells each failure on
the day of its attempt (R8), only the owner changes the buyer address (R1, R3.1), and the
simulated gateway declines a number of charges on request (docs/payments.md)."""

from __future__ import annotations

from sqlalchemy import select

from renewly.adapters.db.tables import outbox, payment_attempts
from renewly.services.accounts import add_member
from tests.builders import OPERATOR, Outcome, customer, database_rows


def test_r8_a_daily_cron_tells_each_failure_on_the_day_of_its_attempt(app, renewly):
    """The issue's reproduction: 19 EUR a month, a card whose charges are declined, a subscription
    from 3 May 2027, `renewly run` once a day at noon: e-mails and declines on 3, 5 and 7 May."""
    assert renewly("clock", "set", "2027-05-01").code == 0
    assert renewly("plans", "create", "--code", "team", "--name", "Team", "--interval", "month", "--price", "1900",
                   "--currency", "EUR").code == 0
    assert renewly("accounts", "create", "--name", "Acme", "--owner-email", "boss@acme.example", "--currency", "EUR",
                   "--country", "FR").code == 0
    assert renewly("cards", "add", "1", "--number", "4000000000000341", "--exp", "12/2030", "--as",
                   "boss@acme.example").code == 0
    assert renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2027-05-03").code == 0
    assert renewly("clock", "advance", "--hours", "60", "--no-batches").code == 0  # 3 May, noon
    for day in range(3, 9):
        if day > 3:
            assert renewly("clock", "advance", "--days", "1", "--no-batches").code == 0
        ran = renewly("run")
        assert ran.code == 0, ran.err
    with app.engine.connect() as conn:
        told = [(at.date().isoformat(), payload["kind"]) for at, payload in conn.execute(
            select(outbox.c.created_at, outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id))]
        declined = [at.date().isoformat() for at in conn.execute(
            select(payment_attempts.c.created_at).where(payment_attempts.c.status == "declined")
            .order_by(payment_attempts.c.id)).scalars()]
    assert told == [("2027-05-03", "payment_failed_1"), ("2027-05-05", "payment_failed_2"),
                    ("2027-05-07", "payment_failed_3")]
    assert declined == ["2027-05-03", "2027-05-05", "2027-05-07"]


def test_r1_r3_1_only_the_owner_changes_the_buyer_address(app, renewly):
    account_id = customer(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    before = database_rows(app)
    for who, refusal in (("admin@acme.test", "only the account owner (owner@acme.test) can do this"),
                         ("stranger@else.test", f"stranger@else.test is not a member of account {account_id}")):
        refused = renewly("accounts", "update-address", str(account_id), "--city", "Lyon", "--as", who)
        assert refused == Outcome(2, "", f"error: {refusal}\n")
    assert database_rows(app) == before
    missing = renewly("accounts", "update-address", str(account_id), "--city", "Lyon")
    assert (missing.code, missing.out) == (2, "")
    assert "--as" in missing.err
    done = renewly("accounts", "update-address", str(account_id), "--city", "Lyon", "--as", "owner@acme.test",
                   "--json")
    assert (done.code, done.json()["city"]) == (0, "Lyon")


def test_the_simulated_gateway_declines_the_next_charges_of_an_account_then_cards_behave(app, renewly):
    done = renewly("gateway", "fault", "decline", "--count", "2", "--code", "expired_card", "--account", "1")
    assert done == Outcome(0, "the next 2 charge(s) of account 1's: declined (expired_card), then as the card "
                              "would\n", "")
    refused = renewly("gateway", "fault", "decline", "--code", "bad_luck")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.startswith("error: unknown decline code 'bad_luck': expected one of insufficient_funds")


def test_a_decline_code_or_account_on_another_fault_is_refused(app, renewly):
    refused = renewly("gateway", "fault", "timeout_after", "--account", "1")
    assert refused == Outcome(2, "", "error: --code and --account go with the decline fault, not timeout_after\n")


def test_what_the_operator_reads_of_dunning_fits_80_columns(app, renewly):
    """A cancelled Paris account, its preview, its banners, a reactivation: every line at most 80."""
    assert renewly("clock", "set", "2026-01-01").code == 0
    assert renewly("plans", "create", "--code", "equipe", "--name", "Équipe", "--interval", "month", "--price",
                   "2900", "--currency", "EUR").code == 0
    assert renewly("accounts", "create", "--name", "Boulangerie Martin et Fils", "--owner-email",
                   "claire@martin.example", "--locale", "fr", "--timezone", "Europe/Paris", "--currency", "EUR",
                   "--country", "FR").code == 0
    assert renewly("subscriptions", "create", "1", "--plan", "equipe", "--seats", "3").code == 0
    outputs = [renewly("clock", "advance", "--days", "10"), renewly("preview", "1"),
               renewly("accounts", "show", "1"), renewly("clock", "advance", "--days", "25"),
               renewly("accounts", "banner", "1", "--member", "claire@martin.example"),
               renewly("support", "reactivate", "1", "--reason", "the owner called support"),
               renewly("accounts", "banner", "1", "--member", "claire@martin.example"), renewly("run"),
               renewly("preview", "1"), renewly("policy", "show")]
    assert all(outcome.code == 0 for outcome in outputs), [outcome.err for outcome in outputs]
    wide = [line for outcome in outputs for line in (outcome.out + outcome.err).splitlines() if len(line) > 80]
    assert wide == []
