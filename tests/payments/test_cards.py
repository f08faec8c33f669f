"""Saving a card (R5.1, R5.2, R5.4) and who may change it (R6.1).

Saving a card authorizes one unit of the account's currency, never captured; the card is saved
only if that succeeds; the hold is voided after the delay, by the void batch on the test clock.
Only the owner changes the card; support transfers ownership when the owner is gone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member, transfer_ownership
from renewly.adapters.db.tables import audit_log, card_verifications, members, outbox, payment_retries
from renewly.adapters.gateways.simulated import Fault
from renewly.payments.cards import CardRefused, add_card, current_card
from renewly.payments.collect import collect_due
from renewly.payments.rules.card_numbers import CardNumberRefused
from renewly.payments.rules.charges import verification_key
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from tests.builders import OPERATOR, customer, subscribed, team_plan
from tests.payment_builders import (
    CHARGES_DECLINED,
    GOOD_CARD,
    OWNER,
    every_stored_value,
    run_cli,
    save_card,
    snapshot,
    tokenized,
)

DECLINED_CARDS = {
    "4000000000000002": ("generic_decline", "the card was declined by the bank"),
    "4000000000009995": ("insufficient_funds", "the card has insufficient funds"),
    "4000000000000069": ("expired_card", "the card has expired"),
    "4000000000000119": ("processing_error", "the bank could not process the card; try again later"),
}


def verifications(app) -> list:
    with app.engine.connect() as conn:
        return conn.execute(select(card_verifications).order_by(card_verifications.c.id)).all()


# -- R5.1: the card check ----------------------------------------------------------------------

def test_r5_1_a_card_that_authorizes_is_saved_with_token_brand_last4_and_expiry(app):
    for number in (GOOD_CARD, CHARGES_DECLINED):  # the second passes the check; its charges will not
        account_id = customer(app, owner=f"owner{number}@acme.test")
        saved = save_card(app, account_id, number, acting=f"owner{number}@acme.test")
        assert current_card(app, account_id) == {
            "brand": "visa", "last4": number[-4:], "exp_month": 12, "exp_year": 2030,
            "added_by": f"owner{number}@acme.test", "added_at": app.clock.now()}
        assert saved.card.token.startswith("pm_sim_") and saved.retries_requested == 0
    checks = verifications(app)
    assert [check.status for check in checks] == ["held", "held"]
    assert sorted(app.gateway.held_authorizations()) == sorted(check.authorization_ref for check in checks)


def test_r5_1_a_declined_card_is_not_saved_and_the_reason_is_given_in_words_with_its_code(app):
    plan = team_plan(app)
    for number, (code, words) in DECLINED_CARDS.items():
        account_id, _ = subscribed(app, plan=plan, owner=f"{code}@acme.test", card=None)  # unpaid
        with pytest.raises(CardRefused) as refused:
            save_card(app, account_id, number, acting=f"{code}@acme.test")
        assert refused.value.message == f"card declined: {words} ({code}); nothing was saved"
        assert current_card(app, account_id) is None
    assert [(c.status, c.decline_code, c.authorization_ref) for c in verifications(app)] == [
        ("declined", code, None) for code, _ in DECLINED_CARDS.values()]
    assert app.gateway.held_authorizations() == [] and app.gateway.charge_count() == 0
    with app.engine.connect() as conn:
        assert conn.execute(select(payment_retries)).all() == []  # no saved card, no retry (R7.1)
        told = [payload for payload in conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id)).scalars()
            if payload["kind"] != "invoice"]  # each subscription's first invoice is e-mailed at issue (R4.3)
    # The owner who tried it is told by e-mail too, in words, with the code in what it is about.
    assert [(e["kind"], e["recipients"], e["reason"]) for e in told] == [
        ("card_verification_failed", [f"{code}@acme.test"], code) for code, _ in DECLINED_CARDS.values()]
    assert all(words in e["body"] and words in e["html"] for e, (_, words) in zip(told, DECLINED_CARDS.values()))
    # A declined card does not replace the card already saved.
    save_card(app, account_id, "5555555555554444", acting="processing_error@acme.test")
    with pytest.raises(CardRefused):
        save_card(app, account_id, "4000000000009995", acting="processing_error@acme.test")
    assert current_card(app, account_id)["last4"] == "4444"


def test_r5_1_the_check_authorizes_one_unit_of_the_accounts_currency_and_never_captures_it(app):
    units = {"USD": 100, "EUR": 100, "JPY": 1, "KWD": 1000}
    for currency in units:
        save_card(app, customer(app, currency=currency))
    checks = verifications(app)
    assert {check.currency: check.amount for check in checks} == units
    for check in checks:
        held = app.gateway.find(verification_key(check.id))
        assert (held.succeeded, held.amount, held.reference) == (True, check.amount, check.authorization_ref)
    assert app.gateway.charge_count() == 0  # authorizations, never a charge


def test_r5_1_a_zero_amount_verification_holds_nothing(databases, db_kind):
    app = databases.fresh_app(db_kind, payments={"verification_units": 0})
    account_id = customer(app)
    save_card(app, account_id)
    [check] = verifications(app)
    assert (check.amount, check.status, check.voided_at) == (0, "voided", app.clock.now())
    assert current_card(app, account_id)["last4"] == "4242"
    assert app.gateway.held_authorizations() == [] and app.gateway.charge_count() == 0


def test_r5_1_a_gateway_that_does_not_answer_saves_nothing_and_says_to_try_again(app):
    account_id = customer(app)
    token = tokenized(app)
    app.gateway.script(Fault.SERVER_ERROR)
    with pytest.raises(CardRefused) as refused:
        add_card(app, account_id, card_token=token, acting_email=OWNER)
    assert refused.value.code == "gateway_unavailable" and "try again" in refused.value.message
    assert current_card(app, account_id) is None and app.gateway.held_authorizations() == []


# -- R5.2: the void ------------------------------------------------------------------------------

def test_r5_2_the_hold_is_voided_at_the_first_void_batch_after_three_days(app):
    app.test_clock.set(datetime(2026, 1, 1, 10, 30, tzinfo=UTC))
    save_card(app, customer(app))
    [check] = verifications(app)
    for day in (1, 2, 3):
        advance(app, timedelta(days=1))
        assert app.gateway.held_authorizations() == [check.authorization_ref], f"day {day}"
    # Day 3 at 10:30 the delay is up; the void batch runs on the hour.
    advance(app, timedelta(minutes=29))
    assert app.gateway.held_authorizations() == [check.authorization_ref]
    advance(app, timedelta(minutes=1))
    assert app.gateway.held_authorizations() == []
    [voided] = verifications(app)
    assert (voided.status, voided.voided_at) == ("voided", datetime(2026, 1, 4, 11, 0, tzinfo=UTC))
    assert app.gateway.charge_count() == 0


def test_r5_2_no_hold_stays_open_past_the_delay_plus_one_batch_interval(databases, db_kind):
    app = databases.fresh_app(db_kind, payments={"void_interval_minutes": 240})
    app.policy = replace(app.policy, verification_void_delay_days=2)  # the delay is policy data
    delay, interval = timedelta(days=2), timedelta(minutes=240)
    start = app.clock.now()
    for index, minutes in enumerate([0, 7, 239, 241, 600, 1439]):
        app.test_clock.set(start + timedelta(minutes=minutes))
        save_card(app, customer(app, owner=f"owner{index}@acme.test"), acting=f"owner{index}@acme.test")
    checks = verifications(app)
    # Look just before each delay is up, and as each delay plus one interval is reached.
    moments = sorted({c.void_due_at - timedelta(minutes=1) for c in checks} | {c.created_at + delay + interval
                                                                             for c in checks})
    for moment in moments:
        advance(app, moment - app.clock.now())
        held = set(app.gateway.held_authorizations())
        for check in checks:
            if moment < check.void_due_at:
                assert check.authorization_ref in held, f"voided early at {moment}"
            if moment >= check.created_at + delay + interval:
                assert check.authorization_ref not in held, f"still held at {moment}"
    assert {c.status for c in verifications(app)} == {"voided"}
    assert all(c.void_due_at <= c.voided_at <= c.created_at + delay + interval for c in verifications(app))


def test_r5_2_a_hold_whose_answer_was_lost_is_voided_by_the_next_void_batch(app):
    account_id = customer(app)
    token = tokenized(app)
    app.gateway.script(Fault.TIMEOUT_AFTER)  # the gateway holds the money, Renewly never hears it
    with pytest.raises(CardRefused):
        add_card(app, account_id, card_token=token, acting_email=OWNER)
    assert len(app.gateway.held_authorizations()) == 1 and current_card(app, account_id) is None
    assert verifications(app)[0].status == "unknown"
    advance(app, timedelta(hours=1))
    assert app.gateway.held_authorizations() == []
    assert verifications(app)[0].status == "voided" and current_card(app, account_id) is None


# -- R5.4: no card number in Renewly ---------------------------------------------------------------

def test_r5_4_no_table_ever_contains_a_card_number(app):
    account_id, _ = subscribed(app, card=None)
    numbers = [GOOD_CARD, CHARGES_DECLINED, "4000000000000002", "5555555555554444"]
    save_card(app, account_id, GOOD_CARD)
    save_card(app, account_id, CHARGES_DECLINED)
    with pytest.raises(CardRefused):
        save_card(app, account_id, "4000000000000002")
    save_card(app, account_id, "5555 5555 5555 4444")
    collect_due(app, app.clock.now())
    advance(app, timedelta(days=40))
    stored = every_stored_value(app)
    assert {table for table, _, _ in stored} >= {"cards", "card_verifications", "payment_attempts", "audit_log",
                                                  "outbox"}
    assert [cell for cell in stored if any(number in cell[2].replace(" ", "") for number in numbers)] == []
    assert current_card(app, account_id)["last4"] == "4444"


# -- R6.1: only the owner changes the card ---------------------------------------------------------

def test_r6_1_a_non_owner_is_refused_with_the_owners_email_and_nothing_changes(app):
    account_id, _ = subscribed(app, card=None)
    customer(app, name="Other", owner="boss@other.test")
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    save_card(app, account_id, "5555555555554444")
    token = tokenized(app)
    before, held = snapshot(app), app.gateway.held_authorizations()
    for acting in ("admin@acme.test", "agent@acme.test", "stranger@elsewhere.test", "boss@other.test"):
        with pytest.raises(NotAllowed) as refused:
            add_card(app, account_id, card_token=token, acting_email=acting)
        assert refused.value.code == "owner_required"
        assert refused.value.message == f"only the account owner ({OWNER}) can change the payment method"
    assert snapshot(app) == before and app.gateway.held_authorizations() == held
    assert current_card(app, account_id)["last4"] == "4444"


def test_r6_1_after_support_transfers_ownership_the_new_owner_changes_the_card(app):
    account_id, _ = subscribed(app, card=None)
    save_card(app, account_id, CHARGES_DECLINED)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    previous = transfer_ownership(app, account_id, to_email="admin@acme.test", reason="the owner left Acme",
                                  actor="support:alice")
    assert previous == OWNER
    with app.engine.connect() as conn:
        roles = dict(conn.execute(select(members.c.email, members.c.role)
                                  .where(members.c.account_id == account_id)).all())
        [entry] = conn.execute(select(audit_log).where(audit_log.c.action == "ownership.transferred")).all()
    assert roles == {OWNER: "admin", "admin@acme.test": "owner"}
    assert (entry.actor, entry.reason, entry.target_id) == ("support:alice", "the owner left Acme", str(account_id))
    assert entry.details == {"from": OWNER, "to": "admin@acme.test"}
    with pytest.raises(NotAllowed, match=r"only the account owner \(admin@acme.test\)"):
        save_card(app, account_id, acting=OWNER)
    saved = save_card(app, account_id, GOOD_CARD, acting="admin@acme.test")
    assert saved.retries_requested == 1  # R7.1: the unpaid first invoice
    assert current_card(app, account_id)["added_by"] == "admin@acme.test"


def test_r5_4_a_card_number_given_for_a_token_is_refused_before_the_gateway_sees_it(app):
    account_id, _ = subscribed(app, card=None)
    before, held = snapshot(app), app.gateway.held_authorizations()
    for given in (GOOD_CARD, "4242 4242 4242 4242", "tok_4242-4242-4242-4242"):
        with pytest.raises(CardNumberRefused) as refused:
            add_card(app, account_id, card_token=given, acting_email=OWNER)
        assert refused.value.code == "card_number_refused" and "4242" not in refused.value.message
    assert snapshot(app) == before and app.gateway.held_authorizations() == held  # no gateway customer either


# -- bad input at the command line: one line on stderr, exit 2, nothing saved ---------------------------

CLI_REFUSALS = {
    "malformed-number": (["--number", "4242424242424241", "--exp", "12/2030"],
                         "error: the card number is incorrect\n"),
    "malformed-expiry": (["--number", GOOD_CARD, "--exp", "2030-12"],
                         "error: malformed expiry '2030-12': expected MM/YYYY\n"),
    "month-13": (["--number", GOOD_CARD, "--exp", "13/2030"],
                 "error: malformed expiry '13/2030': the month must be 01 to 12\n"),
    "expired-expiry": (["--number", GOOD_CARD, "--exp", "12/2025"], "error: the card expired in 12/2025\n"),
    "non-owner": (["--number", GOOD_CARD, "--exp", "12/2030", "--as", "admin@acme.test"],
                  f"error: only the account owner ({OWNER}) can change the payment method\n"),
}


def test_bad_card_input_and_declined_cards_are_refused_with_one_line_exit_2_and_nothing_saved(app, monkeypatch, capsys):
    account_id, _ = subscribed(app, card=None)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    before = snapshot(app)
    for case, (args, message) in CLI_REFUSALS.items():
        acting = [] if "--as" in args else ["--as", OWNER]
        outcome = run_cli(app, monkeypatch, capsys, "cards", "add", str(account_id), *args, *acting)
        assert (outcome.code, outcome.out, outcome.err) == (2, "", message), case
        assert snapshot(app) == before, case
    declined = run_cli(app, monkeypatch, capsys, "cards", "add", str(account_id), "--number", "4000000000009995",
                       "--exp", "12/2030", "--as", OWNER)
    assert (declined.code, declined.out) == (2, "")
    assert declined.err == ("error: card declined: the card has insufficient funds (insufficient_funds); "
                            "nothing was saved\n")
    assert run_cli(app, monkeypatch, capsys, "cards", "show", str(account_id)).out == \
        f"account {account_id} has no card\n"


def test_r6_1_cards_and_ownership_at_the_command_line(app, monkeypatch, capsys):
    account_id, _ = subscribed(app, card=None)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    added = run_cli(app, monkeypatch, capsys, "cards", "add", str(account_id), "--number", "4242 4242 4242 4242",
                    "--exp", "12/30", "--as", OWNER)
    assert (added.code, added.err) == (0, "")
    assert added.out == ("card saved: visa •••• 4242, expires 12/2030; 1 unpaid invoice(s) will be retried by "
                         "the next payment batch\n")
    moved = run_cli(app, monkeypatch, capsys, "accounts", "transfer-ownership", str(account_id), "--to",
                    "admin@acme.test", "--reason", "the owner left Acme")
    assert moved.code == 0 and OWNER in moved.out
    replaced = run_cli(app, monkeypatch, capsys, "cards", "add", str(account_id), "--number", "5555555555554444",
                       "--exp", "01/2031", "--as", "admin@acme.test", "--json")
    assert replaced.code == 0 and GOOD_CARD not in replaced.out
    shown = run_cli(app, monkeypatch, capsys, "cards", "show", str(account_id))
    assert shown.out == "mastercard •••• 4444, expires 01/2031, added by admin@acme.test on 2026-01-01\n"
    assert [cell for cell in every_stored_value(app) if GOOD_CARD in cell[2] or "5555555555554444" in cell[2]] == []
