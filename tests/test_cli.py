"""The command line: the issue's command shapes, and every bad input refused with one line on
stderr, exit code 2, and nothing changed in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from renewly.adapters.db.engine import make_engine
from renewly.adapters.gateways.simulated import ledger_metadata
from tests.builders import Outcome, customer, database_rows, subscribed, team_plan, with_card

RENEWLY = Path(sys.executable).with_name("renewly")


def database(app) -> dict[str, list]:
    return database_rows(app)


def test_the_issues_command_shapes_work(app, renewly):
    assert renewly("plans", "create", "--code", "team", "--name", "Team", "--interval", "month", "--price", "1900",
                   "--currency", "USD") == Outcome(0, "1\n", "")
    assert renewly("accounts", "create", "--name", "Acme", "--owner-email", "boss@acme.example") == Outcome(
        2, "", "error: an account needs its buyer's country (ISO 3166, e.g. FR): it decides the tax\n")
    assert renewly("accounts", "create", "--name", "Acme", "--owner-email", "boss@acme.example", "--country",
                   "US") == Outcome(0, "1\n", "")
    created = renewly("accounts", "create", "--name", "Société Dupont", "--owner-email", "pdg@dupont.example",
                      "--locale", "fr", "--timezone", "Europe/Paris", "--currency", "EUR", "--country", "FR",
                      "--json").json()
    assert {key: created[key] for key in ("id", "name", "locale", "timezone", "currency")} == {
        "id": 2, "name": "Société Dupont", "locale": "fr", "timezone": "Europe/Paris", "currency": "EUR"}
    assert created["members"] == [{"email": "pdg@dupont.example", "role": "owner"}]
    assert created["buyer"]["country"] == "FR"
    assert renewly("members", "add", "1", "--email", "dev@acme.example", "--role", "admin").code == 0
    assert renewly("members", "add", "1", "--email", "help@acme.example", "--role", "agent").code == 0
    assert renewly("subscriptions", "create", "1", "--plan", "team", "--seats", "3", "--start", "2026-01-01") == \
        Outcome(0, "1\n", "")

    account = renewly("accounts", "show", "1", "--json").json()
    assert account["members"] == [{"email": "boss@acme.example", "role": "owner"},
                                  {"email": "dev@acme.example", "role": "admin"},
                                  {"email": "help@acme.example", "role": "agent"}]
    [subscription] = account["subscriptions"]
    assert (subscription["seats"], subscription["current_period_start"], subscription["renews_at"]) == (
        3, "2026-01-01", "2026-02-01T00:00:00+00:00")
    [invoice] = renewly("invoices", "list", "--account", "1", "--json").json()
    assert (invoice["number"], invoice["account_id"], invoice["total"], invoice["currency"]) == (
        "2026-000001", 1, 5700, "USD")
    assert renewly("invoices", "list", "--account", "2", "--json").json() == []
    assert [i["number"] for i in renewly("invoices", "list", "--json").json()] == ["2026-000001"]
    audit_actors = {row.actor for row in database(app)["audit_log"]}
    assert audit_actors == {"test:cli"}


def test_the_clock_and_the_batches_run_from_the_command_line(app, renewly):
    subscribed(app)
    assert renewly("clock", "advance", "--days", "31").code == 0
    assert renewly("invoices", "show", "2026-000002", "--json").json()["period_start"] == "2026-02-01"
    assert renewly("invoices", "credit", "2026-000002", "--reason", "seat unused", "--amount", "1900") == \
        Outcome(0, "CN-2026-000001\n", "")
    assert renewly("clock", "advance", "--days", "28", "--no-batches").code == 0  # 1 March: a day was missed
    assert renewly("renew", "--as-of", "2026-02-28", "--json").json()["invoices_issued"] == 0
    assert renewly("run", "--as-of", "2026-03-01T00:00:00+00:00").code == 0
    assert [i["number"] for i in renewly("invoices", "list", "--json").json()] == [
        "2026-000001", "2026-000002", "CN-2026-000001", "2026-000003"]


BAD_INPUTS = {
    "unknown-plan": ["subscriptions", "create", "1", "--plan", "gold", "--seats", "3"],
    "zero-seats": ["subscriptions", "create", "1", "--plan", "team", "--seats", "0"],
    "negative-seats": ["subscriptions", "create", "1", "--plan", "team", "--seats", "-2"],
    "non-integer-seats": ["subscriptions", "create", "1", "--plan", "team", "--seats", "three"],
    "malformed-start": ["subscriptions", "create", "1", "--plan", "team", "--start", "2026-13-01"],
    "unknown-account": ["subscriptions", "create", "99", "--plan", "team", "--seats", "3"],
    "unknown-account-shown": ["accounts", "show", "99", "--json"],
    "non-integer-account": ["accounts", "show", "acme"],
    "plan-unknown-currency": ["plans", "create", "--code", "pro", "--name", "Pro", "--interval", "month",
                              "--price", "4900", "--currency", "ABC"],
    "plan-unknown-interval": ["plans", "create", "--code", "pro", "--name", "Pro", "--interval", "week",
                              "--price", "4900", "--currency", "USD"],
    "plan-negative-price": ["plans", "create", "--code", "pro", "--name", "Pro", "--interval", "month",
                            "--price", "-1", "--currency", "USD"],
    "plan-code-taken": ["plans", "create", "--code", "team", "--name", "Team", "--interval", "month",
                        "--price", "1900", "--currency", "USD"],
    "account-unknown-currency": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example",
                                 "--currency", "EURO"],
    "account-unknown-timezone": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example",
                                 "--timezone", "Mars/Olympus_Mons"],
    "account-unsupported-locale": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example",
                                   "--locale", "de"],
    "account-bad-email": ["accounts", "create", "--name", "N", "--owner-email", "not-an-email"],
    "account-unknown-country": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example",
                                "--country", "XX"],
    "account-unknown-option": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example",
                               "--colour", "blue"],
    "second-owner": ["members", "add", "1", "--email", "other@acme.test", "--role", "owner"],
    "unknown-role": ["members", "add", "1", "--email", "other@acme.test", "--role", "boss"],
    "member-bad-email": ["members", "add", "1", "--email", "other-at-acme", "--role", "agent"],
    "member-twice": ["members", "add", "1", "--email", "owner@acme.test", "--role", "admin"],
    "remove-owner": ["members", "remove", "1", "--email", "owner@acme.test"],
    "as-of-nonsense": ["renew", "--as-of", "nonsense"],
    "run-as-of-bad-date": ["run", "--as-of", "2026-02-30"],
    "credit-too-much": ["invoices", "credit", "2026-000001", "--reason", "oops", "--amount", "999999"],
    "credit-no-reason": ["invoices", "credit", "2026-000001", "--reason", " "],
    "unknown-invoice": ["invoices", "show", "2026-000999"],
    "seats-unchanged": ["subscriptions", "change-seats", "1", "--seats", "3"],
    "unknown-command": ["subscriptions", "pause", "1"],
    # Hostile inputs (issue 9): the same limits on both engines, one line, nothing changed.
    "account-without-country": ["accounts", "create", "--name", "N", "--owner-email", "n@n.example"],
    "account-name-with-an-ansi-escape": ["accounts", "create", "--name", "Acme\x1b[2J\x1b[31m", "--owner-email",
                                         "n@n.example", "--country", "FR"],
    "account-name-with-a-line-break": ["accounts", "create", "--name", "Acme\nInc", "--owner-email", "n@n.example",
                                       "--country", "FR"],
    "account-name-longer-than-its-column": ["accounts", "create", "--name", "A" * 201, "--owner-email",
                                            "n@n.example", "--country", "FR"],
    "email-with-a-control-character": ["members", "add", "1", "--email", "a\x07b@acme.test", "--role", "agent"],
    "email-longer-than-its-column": ["members", "add", "1", "--email", "a" * 320 + "@acme.test", "--role", "agent"],
    "plan-name-with-an-escape": ["plans", "create", "--code", "pro", "--name", "Pro\x1b]0;pwned\x07", "--interval",
                                 "month", "--price", "4900", "--currency", "USD"],
    "city-longer-than-its-column": ["accounts", "update-address", "1", "--city", "C" * 101, "--as",
                                    "owner@acme.test"],
    "card-expiring-in-year-99999": ["cards", "add", "1", "--number", "4242424242424242", "--exp", "12/99999",
                                    "--as", "owner@acme.test"],
    "card-of-an-unknown-account": ["cards", "show", "999"],
    "an-id-over-64-bits": ["accounts", "show", "99999999999999999999"],
    "a-credit-reason-with-an-escape": ["invoices", "credit", "2026-000001", "--reason", "oops\x1b[0m"],
    # Found by bench/chaos_inputs.py.
    "address-country-emptied": ["accounts", "update-address", "1", "--country", " ", "--as", "owner@acme.test"],
    "resend-of-december-9999": ["invoices", "resend", "1", "--month", "9999-12", "--reason", "asked"],
    "resend-of-year-0": ["invoices", "resend", "1", "--month", "0000-01", "--reason", "asked"],
    "retention-as-of-year-1": ["retention", "--as-of", "0001-01-01"],
    "run-as-of-1969": ["run", "--as-of", "1969-12-31T23:59:59+00:00"],
    "start-empty": ["subscriptions", "create", "1", "--plan", "team", "--start", ""],
    "start-in-9999": ["subscriptions", "create", "1", "--plan", "team", "--start", "9999-12-31"],
    "start-on-the-clocks-end": ["subscriptions", "create", "1", "--plan", "team", "--start", "9900-01-01"],
    "backdated-to-year-1": ["subscriptions", "create", "1", "--plan", "team", "--start", "0001-01-01", "--backdate"],
    "outbox-topic-with-an-escape": ["outbox", "list", "--topic", "email\x1b[2J"],
    "backdated-a-century": ["subscriptions", "create", "1", "--plan", "team", "--start", "1926-01-01", "--backdate"],
}


@pytest.mark.parametrize("args", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_with_one_line_on_stderr_exit_2_and_nothing_changed(app, renewly, args):
    subscribed(app, seats=3)  # account 1, owner@acme.test, plan team, subscription 1, invoice 2026-000001
    before = database(app)
    outcome = renewly(*args)
    assert outcome.code == 2
    assert outcome.out == ""
    assert outcome.err.startswith("error: ") and outcome.err.endswith("\n") and outcome.err.count("\n") == 1
    assert database(app) == before


def test_a_card_refused_for_who_adds_it_leaves_nothing_at_the_gateway(app, renewly):
    """The owner is checked before the card is tokenized: a refusal left a card in the simulated
    gateway's ledger (bench/chaos_inputs.py: changed on refusal)."""
    subscribed(app, seats=3, card=None)
    ledger = make_engine(app.settings.simulator_url())
    try:
        before = ledger_rows(ledger), database(app)
        for acting in ("agent@acme.test", "", "a" * 320 + "@acme.test"):
            refused = renewly("cards", "add", "1", "--number", "4242424242424242", "--exp", "12/2030", "--as", acting)
            assert (refused.code, refused.out, refused.err.count("\n")) == (2, "", 1), (acting, refused)
        assert (ledger_rows(ledger), database(app)) == before
    finally:
        ledger.dispose()


def ledger_rows(engine) -> dict[str, list]:
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {table.name: conn.execute(select(table)).all() for table in ledger_metadata.sorted_tables
                if table.name in present}


def test_the_refusal_names_what_was_wrong(app, renewly):
    customer(app)
    team_plan(app)
    assert renewly("subscriptions", "create", "1", "--plan", "gold").err == "error: no plan with code 'gold'\n"
    assert renewly("members", "add", "1", "--email", "x@acme.test", "--role", "owner").err == (
        "error: an account has exactly one owner; support transfers ownership instead\n")
    assert renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2026-13-01").err == (
        "error: malformed --start '2026-13-01': expected YYYY-MM-DD\n")
    assert "--colour" in renewly("plans", "list", "--colour").err


def test_the_installed_command_refuses_bad_input_the_same_way(app, cli_environment):
    """One real process: the console script's exit code and streams (in-process runs cover the rest)."""
    account_id = customer(app)
    before = database(app)
    env = {**os.environ, **cli_environment}
    refused = subprocess.run([str(RENEWLY), "members", "add", str(account_id), "--email", "x@acme.test", "--role",
                              "owner"], env=env, capture_output=True, text=True, timeout=60)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == "error: an account has exactly one owner; support transfers ownership instead\n"
    assert database(app) == before


def test_a_batch_never_runs_as_of_a_moment_later_than_the_clock(app, renewly):
    """A typo (2030 for 2026) issued invoices dated years ahead: refused, one line, nothing changed."""
    subscribed(app)
    before = database(app)
    for args in (["renew", "--as-of", "2030-01-01"], ["run", "--as-of", "2026-01-02T00:00:00"],
                 ["dunning", "--as-of", "2026-01-02"]):
        refused = renewly(*args)
        assert (refused.code, refused.out) == (2, "")
        assert refused.err.startswith(f"error: --as-of {args[-1]} is later than the clock (2026-01-01T00:00:00+00:00)")
    assert database(app) == before
    assert renewly("run", "--as-of", "2026-01-01").code == 0  # today, not over yet: now


def test_the_test_clock_stops_a_century_before_the_calendar_ends(app, renewly):
    """A clock set to 9999 overflowed the dates batches compute ahead of it (a stack trace, then
    'a number is larger than the database holds'): the clock stops at 9900, said in one line."""
    assert renewly("clock", "set", "9899-06-01").code == 0
    subscribed(app, plan=team_plan(app, interval="year"), card=None)  # unpaid: dunning, cancellation, retention
    assert renewly("clock", "advance", "--days", "200").code == 0  # dates a year ahead still exist
    assert renewly("invoices", "list", "--json").json()[-1]["period_start"] == "9899-06-01"
    before = database(app)
    for args in (["clock", "set", "9999-12-30"], ["clock", "advance", "--days", "30"],
                 ["clock", "advance", "--hours", "99999999999999999999"]):
        refused = renewly(*args)
        assert (refused.code, refused.out) == (2, ""), args
        assert refused.err.startswith("error: the test clock ") and "stops at 9900-01-01" in refused.err, args
    assert database(app) == before
    assert renewly("clock", "show").out == "test clock: 9899-12-18T00:00:00+00:00\n"


def test_an_advance_longer_than_ten_years_is_a_typo_refused_in_one_line(app, renewly):
    """`clock advance --days 1000000` ran for most of an hour (a simulated year a second)."""
    before = database(app)
    for args in (["--days", "3661"], ["--days", "1000000"], ["--hours", str(3660 * 24 + 1)],
                 ["--days", "3661", "--no-batches"]):
        refused = renewly("clock", "advance", *args)
        assert (refused.code, refused.out) == (2, ""), args
        assert refused.err == "error: an advance moves at most 3660 days (ten years); advance again for more\n"
    assert database(app) == before
    assert renewly("clock", "advance", "--days", "3660", "--no-batches").code == 0


def test_a_start_more_than_one_period_ago_needs_backdate_and_makes_one_catch_up_invoice(app, renewly):
    with_card(app, customer(app))
    team_plan(app)
    before = database(app)
    refused = renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2016-01-31")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == ("error: --start 2016-01-31 is more than one month ago (120 periods would be invoiced at "
                           "once); say --backdate to bill them in one catch-up invoice\n")
    assert database(app) == before
    assert renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2015-12-02").code == 2
    # One month ago is fine: that period and the current one, an invoice each.
    assert renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2025-12-01").code == 0
    assert [i["period_start"] for i in renewly("invoices", "list", "--json").json()] == ["2025-12-01", "2026-01-01"]
    done = renewly("subscriptions", "create", "1", "--plan", "team", "--start", "2025-06-01", "--backdate")
    assert done.code == 0
    catch_up = renewly("invoices", "list", "--json").json()[-1]
    assert (catch_up["period_start"], catch_up["period_end"], catch_up["total"]) == ("2025-06-01", "2026-02-01",
                                                                                     8 * 1900 * 12 // 10)
    lines = renewly("invoices", "show", catch_up["number"], "--json").json()["lines"]
    assert [(line["period_start"], line["period_end"]) for line in lines][:2] == [
        ("2025-06-01", "2025-07-01"), ("2025-07-01", "2025-08-01")]
    assert len(lines) == 8
    assert renewly("clock", "advance", "--days", "40").code == 0
    invoices = renewly("invoices", "list", "--json").json()
    assert [(i["subscription_id"], i["period_start"], i["status"]) for i in invoices[-2:]] == [
        (1, "2026-02-01", "paid"), (2, "2026-02-01", "paid")]  # each renews on from its periods
    assert all(i["status"] == "paid" for i in invoices)


@pytest.mark.parametrize("url, said", [
    ("foo", "error: the database URL cannot be read"),
    ("postgresql://postgres@127.0.0.1:1/renewly", "error: the database cannot be used: connection failed"),
    ("sqlite:////nonexistent/folder/renewly.db", "error: the database cannot be used: unable to open database file"),
    ("corrupt", "error: the database refused: file is not a database"),
], ids=["malformed-url", "unreachable-server", "missing-folder", "corrupt-file"])
def test_broken_infrastructure_is_one_line_on_stderr_and_exit_2(url, said, tmp_path, monkeypatch, capsys):
    if url == "corrupt":
        (tmp_path / "corrupt.db").write_bytes(b"not a database at all" * 100)
        url = f"sqlite:///{tmp_path / 'corrupt.db'}"
    monkeypatch.setenv("RENEWLY_DATABASE_URL", url)
    monkeypatch.setattr(sys, "argv", ["renewly", "accounts", "list"])
    with pytest.raises(SystemExit) as exited:
        from renewly import cli
        cli.main()
    captured = capsys.readouterr()
    assert (exited.value.code, captured.out) == (2, "")
    assert captured.err.startswith(said) and captured.err.count("\n") == 1


def read_only(database_url: str) -> str:
    """The same database, opened read-only: SQLite's mode=ro, PostgreSQL's read-only transactions."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///file:{database_url.split(':///', 1)[1]}?mode=ro&uri=true"
    joiner = "&" if "?" in database_url else "?"
    return f"{database_url}{joiner}options=-c%20default_transaction_read_only%3Don"


def test_a_read_only_database_is_one_line_on_stderr_and_exit_2(app, renewly, monkeypatch):
    """`renewly run` on a read-only PostgreSQL spun for ever: its claims failed, the slice was
    taken again one case at a time, no case failed alone, and the slice was claimed again."""
    subscribed(app, card=None)
    app.test_clock.set(app.clock.now() + timedelta(days=40))  # renewals and dunning steps are due
    before = database(app)
    monkeypatch.setenv("RENEWLY_DATABASE_URL", read_only(app.settings.database_url))
    for args in (["run"], ["renew"], ["dunning"], ["clock", "advance", "--days", "1"],
                 ["accounts", "create", "--name", "Beta", "--owner-email", "b@beta.example", "--country", "FR"]):
        refused = renewly(*args)
        assert (refused.code, refused.out) == (2, ""), args
        assert refused.err.startswith("error: the database ") and refused.err.count("\n") == 1, (args, refused.err)
    assert renewly("accounts", "list", "--json").code == 0  # reading still works
    assert database(app) == before



@pytest.mark.parametrize("variable", ["RENEWLY_POLICY_FILE", "RENEWLY_CONFIG_FILE"])
@pytest.mark.parametrize("made, said", [
    (lambda path: path.write_bytes(bytes(range(256))), "not a text file (TOML is UTF-8; byte 128 is not)"),
    (lambda path: path.mkdir(), "(Is a directory)"),
], ids=["binary", "directory"])
def test_a_policy_or_configuration_file_that_is_no_text_is_one_line_and_exit_2(app, renewly, monkeypatch, tmp_path,
                                                                               variable, made, said):
    path = tmp_path / "given.toml"
    made(path)
    monkeypatch.setenv(variable, str(path))
    refused = renewly("run")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.startswith(f"error: {path}: ") and refused.err.endswith(f"{said}\n")
    assert refused.err.count("\n") == 1


def test_a_run_logs_one_json_line_per_batch_run_only_when_asked(app, renewly, monkeypatch):
    subscribed(app)
    assert renewly("clock", "advance", "--days", "31", "--no-batches").code == 0
    quiet = renewly("run")
    assert (quiet.code, quiet.err) == (0, "")  # by default: nothing on stderr

    assert renewly("clock", "advance", "--days", "28", "--no-batches").code == 0
    monkeypatch.setenv("RENEWLY_LOG_BATCH_RUNS", "1")
    monkeypatch.setenv("RENEWLY_LOG_FORMAT", "json")
    lines = [json.loads(line) for line in renewly("run").err.splitlines()]

    # One line per run of a batch: the billing chain runs in rounds until it rests (scheduler.py).
    chain, others = lines[:-3], lines[-3:]
    assert [line["batch"] for line in chain] == ["collect", "dunning", "renew"] * (len(chain) // 3)
    assert [line["batch"] for line in others] == ["void-verifications", "webhooks", "retention"]
    assert {(line["event"], line["level"], line["at"]) for line in lines} == {
        ("batch run", "info", "2026-03-01T00:00:00+00:00")}
    assert sum(line["invoices_issued"] for line in chain if line["batch"] == "renew") == 1
    assert sum(line["succeeded"] for line in chain if line["batch"] == "collect") == 1
    assert all(line["seconds"] >= 0 for line in lines)


def test_the_version_is_the_installed_package_s(renewly):
    from importlib.metadata import version
    shown = renewly("--version")
    assert (shown.code, shown.out, shown.err) == (0, f"renewly {version('renewly')}\n", "")


@pytest.mark.parametrize("args", [["run"], ["renew"], ["subscriptions", "create", "1", "--plan", "team"]],
                         ids=["run", "renew", "subscriptions-create"])
def test_the_demo_seller_is_refused_on_the_system_clock_before_anything_is_issued(app, renewly, monkeypatch,
                                                                                 args):
    """Real invoices must not say "Renewly Demo SAS": one line, exit 2, nothing changed, until the
    operator sets the seller; the test clock keeps the demo's seller."""
    customer(app)
    team_plan(app)
    before = database(app)
    monkeypatch.setenv("RENEWLY_CLOCK", "system")
    refused = renewly(*args)
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == "error: invoices would name the demo seller; set [seller] (docs/configuration.md)\n"
    assert len(refused.err.rstrip("\n")) <= 80
    assert database(app) == before
    for key, value in {"NAME": "Acme Billing SARL", "VAT_ID": "FR40123456824", "REGISTRATION": "RCS Lyon 123 456 824",
                       "SIREN": "123456824", "SIRET": "12345682400010"}.items():
        monkeypatch.setenv(f"RENEWLY_SELLER__{key}", value)
    assert renewly(*args).code == 0, args


def test_the_test_clock_keeps_the_demo_seller(app, renewly):
    customer(app)
    team_plan(app)
    assert renewly("subscriptions", "create", "1", "--plan", "team").code == 0
    assert renewly("run").code == 0
