"""Issue 9's input rules as properties, over the services and the command line, on both engines.

Whatever an operator types, a service either does what was asked, storing only printable text
that fits its column, or refuses with a BillingError (the command line's one line and exit 2)
and changes nothing; never another exception. The same input gets the same answer on SQLite and
on PostgreSQL (PostgreSQL refused text over a column's length that SQLite stored). The example
counts are small, so that each test takes seconds: bench/chaos_inputs.py is the long run.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String

from renewly.accounts.accounts import create_account, update_buyer_address
from renewly.adapters.db.tables import metadata
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import change_seats, create_subscription
from renewly.shared.errors import BillingError
from tests.builders import OPERATOR, database_rows, subscribed

QUICK = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Text as operators and attackers type it: letters, control characters and escapes, long runs.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from("aZ é名\x00\x07\x1b[2J\n\r\t\x7f\x9b\u202e"), max_size=12),
    st.builds(lambda char, n: char * n, st.sampled_from("aé名 "), st.integers(150, 400)),
)
# Integers around every bound a column or a rule has, and beyond 64 bits.
HOSTILE_INTEGERS = st.one_of(st.integers(-3, 3), st.integers(-2**70, 2**70),
                             st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**6, 10**6 + 1, 10**13, 10**16]))
COUNTER = itertools.count(1)


@pytest.fixture
def engines(databases):
    """An SQLite and a PostgreSQL application, side by side, for the whole test (not per example)."""
    return {kind: databases.fresh_app(kind) for kind in ("sqlite", "postgresql")}


def answer(engines, act) -> dict[str, str]:
    """Run `act(app)` on each engine: "ok", or the code of the BillingError it refused with, the
    database left as it was. Any other exception fails the test."""
    answers = {}
    for kind, app in engines.items():
        before = database_rows(app)
        try:
            act(app)
        except BillingError as refusal:
            assert database_rows(app) == before, f"{kind}: refused ({refusal.message}) yet changed the database"
            answers[kind] = refusal.code
        else:
            answers[kind] = "ok"
            assert_only_printable_text_fitting_its_column(app)
    return answers


def assert_only_printable_text_fitting_its_column(app) -> None:
    for table_name, rows in database_rows(app).items():
        table = metadata.tables[table_name]
        for column in table.columns:
            if not isinstance(column.type, String) or column.type.length is None:
                continue
            for row in rows:
                value = row._mapping[column.name]
                if isinstance(value, str):
                    assert len(value) <= column.type.length, (table_name, column.name, value)
                    assert value.isprintable(), (table_name, column.name, value)


@QUICK
@given(name=HOSTILE_TEXT, country=st.sampled_from(["FR", "fr", "", " ", "XX", "F\x1bR", "FRA"]),
       currency=st.sampled_from(["USD", "eur", "EURO", "", "\x1b[0m"]), local=HOSTILE_TEXT)
def test_an_account_is_created_with_clean_text_or_refused_alike_on_both_engines(engines, name, country, currency,
                                                                                  local):
    owner = f"{local}{next(COUNTER)}@acme.test"
    answers = answer(engines, lambda app: create_account(app, name=name, owner_email=owner, country=country,
                                                         currency=currency, actor=OPERATOR))
    assert answers["sqlite"] == answers["postgresql"], answers


@QUICK
@given(code=HOSTILE_TEXT, name=HOSTILE_TEXT, price=HOSTILE_INTEGERS,
       interval=st.sampled_from(["month", "year", "week", "", "MONTH"]))
def test_a_plan_is_created_within_its_bounds_or_refused_alike_on_both_engines(engines, code, name, price, interval):
    code = f"{code}{next(COUNTER)}"
    answers = answer(engines, lambda app: create_plan(app, code=code, name=name, interval=interval, price=price,
                                                      currency="USD", actor=OPERATOR))
    assert answers["sqlite"] == answers["postgresql"], answers


@QUICK
@given(seats=HOSTILE_INTEGERS, start=st.none() | st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
       backdate=st.booleans(), new_seats=HOSTILE_INTEGERS)
def test_seats_and_starts_are_bounded_alike_on_both_engines(engines, seats, start, backdate, new_seats):
    """A seat count whose total overflowed, a start in year 1 or 9999: refused at the door, on
    both engines, so that no poison row reaches a batch (issue 9, items 3 and 4)."""
    for app in engines.values():
        if not database_rows(app)["accounts"]:
            subscribed(app, seats=1, card=None)  # account 1, plan team, subscription 1
    answers = answer(engines, lambda app: create_subscription(app, 1, plan_code="team", seats=seats, start=start,
                                                              backdate=backdate, actor=OPERATOR))
    assert answers["sqlite"] == answers["postgresql"], answers
    answers = answer(engines, lambda app: change_seats(app, 1, seats=new_seats, actor=OPERATOR))
    assert answers["sqlite"] == answers["postgresql"], answers


@QUICK
@given(field=st.sampled_from(["name", "line1", "line2", "postcode", "city", "country", "vat_id"]),
       value=HOSTILE_TEXT)
def test_the_buyer_address_takes_clean_text_or_is_refused_alike_on_both_engines(engines, field, value):
    for app in engines.values():
        if not database_rows(app)["accounts"]:
            subscribed(app, seats=1, card=None)
    answers = answer(engines, lambda app: update_buyer_address(app, 1, changes={field: value},
                                                               acting_email="owner@acme.test", actor=OPERATOR))
    assert answers["sqlite"] == answers["postgresql"], answers


# -- the command line ------------------------------------------------------------------------------

ARGUMENT = st.one_of(HOSTILE_TEXT.filter(lambda text: "\x00" not in text),  # no process gets a NUL byte
                     HOSTILE_INTEGERS.map(str), st.sampled_from(["", "-1", "--", "--json", "1", "2026-000001"]))
COMMANDS = [["accounts", "show"], ["cards", "show"], ["invoices", "show"], ["members", "add", "1", "--role", "agent",
                                                                            "--email"],
            # Without its batches, so that each example stays fast (batches run a simulated year a second).
            ["subscriptions", "change-seats", "1", "--seats"], ["clock", "advance", "--no-batches", "--days"],
            ["clock", "set"],
            ["renew", "--as-of"], ["invoices", "credit", "2026-000001", "--reason", "typo", "--amount"],
            ["invoices", "resend", "1", "--reason", "asked", "--month"], ["problems", "resolve"],
            ["cards", "add", "1", "--as", "owner@acme.test", "--number", "4242424242424242", "--exp"]]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from(COMMANDS), value=ARGUMENT)
def test_any_argument_is_answered_or_refused_in_one_line_with_exit_2_and_nothing_changed(app, renewly, command,
                                                                                          value):
    if not database_rows(app)["accounts"]:
        subscribed(app, seats=3)  # account 1, owner@acme.test, subscription 1, invoice 2026-000001
    before = database_rows(app)
    outcome = renewly(*command, value)
    assert outcome.code in (0, 2), outcome
    if outcome.code == 2:
        assert outcome.out == "" and outcome.err.startswith("error: ") and outcome.err.count("\n") == 1, outcome
        assert database_rows(app) == before
    else:
        assert_only_printable_text_fitting_its_column(app)
