"""Dunning from the operator's command line: a daily cron of `renewly run` tells each failure on
the day of its attempt (R8), only the owner changes the buyer address (R1, R3.1), and the
simulated gateway declines a number of charges on request (docs/payments.md)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.engine import current_revision, head_revision, make_engine, upgrade
from renewly.adapters.db.tables import outbox, payment_attempts
from renewly.config.policy import DEFAULT_POLICY
from renewly.scheduler import advance
from tests.builders import OPERATOR, Outcome, customer, database_rows, subscribed, team_plan

DECLINES = "4000000000000341"  # the card check passes, every charge is declined


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
            select(outbox.c.created_at, outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id))
            if payload["kind"] != "invoice"]  # the dunning e-mails: not the invoices' (R4.3)
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


# -- issue 9, item 5: what a new policy does to the open cases ---------------------------------------

def a_policy_without_payment_failed_3_and_an_early_warning(tmp_path) -> str:
    """The default, with day 4 removed and the warning on day 3 (instead of 21)."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    start = text.index('[[steps]]\nname = "payment_failed_3"')
    text = text[:start] + text[text.index("[[steps]]", start + 1):]
    text = text.replace('name = "suspension_warning"\nday = 21', 'name = "suspension_warning"\nday = 3')
    text = text.replace('version = "r8-default-2026-11"', 'version = "early-warning"')
    path = tmp_path / "early-warning.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_policy_check_against_the_database_lists_the_cases_that_would_move_and_changes_nothing(app, renewly,
                                                                                               tmp_path):
    plan = team_plan(app)
    at_day_4, _ = subscribed(app, plan=plan, card=DECLINES, owner="a@acme.test")  # day 0: 1 January
    later, _ = subscribed(app, plan=plan, card=DECLINES, owner="b@acme.test", start=date(2026, 1, 5))
    advance(app, timedelta(days=5, hours=12))  # 6 January: the first case took day 4, the other day 0
    path = a_policy_without_payment_failed_3_and_an_early_warning(tmp_path)
    before = database_rows(app)

    checked = renewly("policy", "check", path, "--against")
    assert (checked.code, checked.err) == (0, "")
    lines = checked.out.splitlines()
    # 80 columns, but for a file's path or the database's URL, which are the operator's own.
    assert all(len(line) <= 80 for line in lines if path not in line and "sqlite:" not in line)
    assert lines[-1 - lines[::-1].index("    (policy in force: r8-default-2026-11):") + 1:] == [
        f"  case 1, account {at_day_4}: after payment_failed_3; that step is gone: now after",
        "        payment_failed_2",
        "      new: suspension_warning at the next sweep, account_cancelled on 2026-01-30",
        "      was: suspension_warning on 2026-01-22, account_cancelled on 2026-01-30",
        f"  case 2, account {later}: after payment_failed_1",
        "      new: payment_failed_2 on 2026-01-07, suspension_warning on 2026-01-08,",
        "        account_cancelled on 2026-02-03",
        "      was: payment_failed_2 on 2026-01-07, payment_failed_3 on 2026-01-09,",
        "        suspension_warning on 2026-01-26, account_cancelled on 2026-02-03",
        "2 open case(s); 2 would move: 1 whose last step is gone, 1 with a step due at",
        "    the next sweep, 0 whose cancellation moves (0 cancelled at the next sweep),",
        "    0 waiting notice(s) no longer given"]

    as_json = renewly("policy", "check", path, "--against", "--json").json()
    assert as_json["counts"] == {"open_cases": 2, "would_move": 2, "last_step_gone": 1, "steps_due_at_once": 1,
                                 "cancellation_moved": 0, "cancelled_at_once": 0, "notices_dropped": 0}
    first = as_json["cases"][0]
    assert (first["last_step"], first["last_step_gone"], first["after"], first["due_at_once"]) == (
        "payment_failed_3", True, "payment_failed_2", ["suspension_warning"])
    assert as_json["policy_in_force"] == "r8-default-2026-11" and as_json["version"] == "early-warning"

    same = renewly("policy", "check", str(DEFAULT_POLICY), "--against", "--json").json()
    assert (same["counts"]["open_cases"], same["counts"]["would_move"], same["cases"]) == (2, 0, [])
    assert database_rows(app) == before  # read only


def test_policy_check_refuses_an_invalid_file_in_one_line_before_reading_any_database(app, renewly, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("day = 21", "day = 3000000"),
                    encoding="utf-8")
    refused = renewly("policy", "check", str(path), "--against")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.startswith(f"error: {path}:") and refused.err.count("\n") == 1


def test_policy_check_against_a_missing_sqlite_database_creates_none(renewly, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("RENEWLY_DATABASE_URL", f"sqlite:///{missing}")
    refused = renewly("policy", "check", str(DEFAULT_POLICY), "--against")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == f"error: no database at {missing}: --against reads the configured database " \
                          "(RENEWLY_DATABASE_URL) and creates none\n"
    assert not missing.exists()


def test_policy_check_against_an_older_schema_upgrades_nothing(renewly, tmp_path, monkeypatch):
    older = tmp_path / "older.db"
    engine = make_engine(f"sqlite:///{older}")
    upgrade(engine, "0010")
    monkeypatch.setenv("RENEWLY_DATABASE_URL", f"sqlite:///{older}")
    refused = renewly("policy", "check", str(DEFAULT_POLICY), "--against")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == f"error: the database schema is at 0010, this Renewly needs {head_revision()}: run " \
                          "`renewly db upgrade` first\n"
    assert current_revision(engine) == "0010"
    engine.dispose()


def test_banners_read_as_words_and_json_keeps_the_policy_codes(app, renewly):
    """A day-4 account: the owner sees the payment failed warning, the agent no banner."""
    account_id, _ = subscribed(app, card=DECLINES, owner="owner@acme.test")
    add_member(app, account_id, email="help@acme.test", role="agent", actor=OPERATOR)
    assert renewly("clock", "advance", "--days", "5").code == 0
    banner = renewly("accounts", "banner", str(account_id), "--member", "owner@acme.test")
    assert banner.out.startswith("payment failed warning: ")
    assert renewly("accounts", "banner", str(account_id), "--member", "help@acme.test").out == "no banner\n"
    shown = renewly("accounts", "show", str(account_id)).out
    assert "  banner for owner: payment failed warning — " in shown and "  banner for agent: no banner" in shown
    assert "owner_and_admins" not in shown + banner.out
    as_json = renewly("accounts", "banner", str(account_id), "--member", "owner@acme.test", "--json").json()
    assert as_json["banner"] == "owner_and_admins"
