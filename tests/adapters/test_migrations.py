"""Upgrading a database that holds data, on both engines.

0007 (one dunning case per account): an account the old sweep gave two open cases keeps one,
chasing both invoices; a case past a step whose e-mail was sent counts as warned then; the
foreign keys still hold. 0009 (issued documents guarded, outbox ids never given twice): the rows
and their ids stay, the guards hold on the documents already there, the retention batch still
deletes them, and the next outbox id comes after the highest one. 0010 (audit pseudonyms): the
people of accounts deleted before it become pseudonyms in their audit entries, staff and live
accounts' entries stay as they were, and the log stays append-only. 0011 (dunning steps by name):
each open case keeps the name and day of the step it took last, and of the one whose notice
waits, as it recorded them; a case takes each named step once. 0012 (accounts' import key):
the accounts stay, without a key; a key names one account at most.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime
from json import dumps, loads

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from renewly.adapters.db.engine import alembic_config, current_revision, head_revision, make_engine, upgrade
from renewly.retention.deletion import delete_invoices
from tests.conftest import ADMIN_URL, admin_connection

OPENED = datetime(2026, 1, 1, 1, tzinfo=UTC)
WARNED = datetime(2026, 1, 22, tzinfo=UTC)


@contextmanager
def database_at(kind: str, tmp_path, revision: str):
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/old.db")
        upgrade(engine, revision)
        yield engine
        engine.dispose()
        return
    name = f"renewly_migration_{uuid.uuid4().hex[:10]}"
    admin = admin_connection()  # skipped, or failed, as the PostgreSQL half says
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
                         .render_as_string(False))
    try:
        upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0006(request, tmp_path):
    with database_at(request.param, tmp_path, "0006") as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0007(request, tmp_path):
    with database_at(request.param, tmp_path, "0007") as engine:
        yield engine


def stored(engine, instant: datetime):
    # What the UTCDateTime column stores: naive UTC on SQLite, an aware instant on PostgreSQL.
    return instant.replace(tzinfo=None) if engine.dialect.name == "sqlite" else instant


def load_two_open_cases(engine) -> None:
    """Account 1 with two renewal invoices and the two open cases the old sweep gave them."""
    json = "CAST(:doc AS jsonb)" if engine.dialect.name == "postgresql" else ":doc"
    at = stored(engine, OPENED)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, created_at, "
                          "updated_at, banner) VALUES (1, 'Acme', 'en', 'UTC', 'USD', 'past_due', 'Acme', :at, :at, "
                          "'everyone')"), {"at": at})
        conn.execute(text("INSERT INTO plans (id, code, name, interval, unit_amount, currency, created_at) "
                          "VALUES (1, 'team', 'Team', 'month', 1900, 'USD', :at)"), {"at": at})
        for number in (1, 2):
            conn.execute(text("INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, "
                              "periods_invoiced, renews_at, created_at) VALUES (:n, 1, 1, 1, 'active', :day, 1, :at, "
                              ":at)"), {"n": number, "day": date(2026, 1, number), "at": at})
            conn.execute(text(f"INSERT INTO invoices (id, number, series, sequence, kind, account_id, subscription_id, "
                              f"issue_date, period_start, period_end, currency, subtotal, tax_rate, tax, total, "
                              f"locale, seller, buyer, status, issued_at) VALUES (:n, :number, '2026', :n, 'invoice', "
                              f"1, :n, :day, :day, :day, 'USD', 1900, '0', 0, 1900, 'en', {json}, {json}, 'open', "
                              f":at)"), {"n": number, "number": f"2026-00000{number}", "day": date(2026, 1, number),
                                         "doc": '{"name": "x"}', "at": at})
        # The first case took the day-21 warning with its e-mail; the second only its day-0 step.
        for case, day0, last_step in ((1, date(2026, 1, 1), 3), (2, date(2026, 1, 2), 0)):
            conn.execute(text("INSERT INTO dunning_cases (id, account_id, invoice_id, day0, status, last_step, "
                              "next_step_at, opened_at) VALUES (:case, 1, :case, :day0, 'open', :last, :at, :at)"),
                         {"case": case, "day0": day0, "last": last_step, "at": at})
            conn.execute(text("INSERT INTO dunning_steps (case_id, step, name, day, policy_version, taken_at, email, "
                              "charge_requested) VALUES (:case, :last, 'step', 0, 'v1', :taken, 'an_email', 1)"),
                         {"case": case, "last": last_step, "taken": stored(engine, WARNED if case == 1 else OPENED)})


def test_0007_keeps_one_open_case_per_account_with_all_its_invoices(engine_at_0006):
    engine = engine_at_0006
    load_two_open_cases(engine)
    upgrade(engine, "0007")
    with engine.connect() as conn:
        cases = conn.execute(text("SELECT id, status, awaiting_step, closed_at IS NOT NULL FROM dunning_cases "
                                  "ORDER BY id")).all()
        chased = conn.execute(text("SELECT invoice_id, case_id FROM dunning_case_invoices ORDER BY invoice_id")).all()
        warned = conn.execute(text("SELECT warned_at FROM dunning_cases WHERE id = 1")).scalar()
    assert [tuple(case) for case in cases] == [(1, "open", None, False), (2, "merged", None, True)]
    assert [tuple(row) for row in chased] == [(1, 1), (2, 1)]
    assert str(warned).startswith("2026-01-22 00:00:00")
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one open case per account, from now on
        conn.execute(text("UPDATE dunning_cases SET status = 'open' WHERE id = 2"))


def test_0007_on_an_empty_database_and_back(engine_at_0006):
    engine = engine_at_0006
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0006")
    assert current_revision(engine) == "0006"
    upgrade(engine)
    assert current_revision(engine) == head_revision()


# -- 0009 -------------------------------------------------------------------------------------------

EVENT_IDS = (1, 2, 3, 7)  # 4 to 6 deleted by the retention batch


def load_documents_and_events(engine) -> None:
    """Account 1 with two issued invoices and their lines, events 1, 2, 3 and 7, one audit entry."""
    postgres = engine.dialect.name == "postgresql"
    json = "CAST(:doc AS jsonb)" if postgres else ":doc"
    at = stored(engine, OPENED)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, created_at, "
                          "updated_at) VALUES (1, 'Acme', 'en', 'UTC', 'USD', 'active', 'Acme', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO plans (id, code, name, interval, unit_amount, currency, created_at) "
                          "VALUES (1, 'team', 'Team', 'month', 1900, 'USD', :at)"), {"at": at})
        conn.execute(text("INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, "
                          "periods_invoiced, renews_at, created_at) VALUES (1, 1, 1, 1, 'active', :day, 2, :at, :at)"),
                     {"day": date(2026, 1, 1), "at": at})
        for number in (1, 2):
            day = date(2026, number, 1)
            conn.execute(text(f"INSERT INTO invoices (id, number, series, sequence, kind, account_id, subscription_id, "
                              f"issue_date, period_start, period_end, currency, subtotal, tax_rate, tax, total, "
                              f"locale, seller, buyer, status, issued_at) VALUES (:n, :number, '2026', :n, 'invoice', "
                              f"1, 1, :day, :day, :day, 'USD', 1900, '0', 0, 1900, 'en', {json}, {json}, 'open', "
                              f":at)"), {"n": number, "number": f"2026-00000{number}", "day": day,
                                         "doc": '{"name": "x"}', "at": at})
            conn.execute(text("INSERT INTO invoice_lines (invoice_id, position, kind, description, quantity, "
                              "unit_amount, amount) VALUES (:n, 1, 'subscription', 'Team', 1, 1900, 1900)"),
                         {"n": number})
        for event_id in EVENT_IDS:
            conn.execute(text(f"INSERT INTO outbox (id, created_at, topic, account_id, payload) "
                              f"VALUES (:id, :at, 'invoice.issued', 1, {json})"),
                         {"id": event_id, "at": at, "doc": f'{{"event": {event_id}}}'})
        conn.execute(text(f"INSERT INTO audit_log (at, actor, action, target_type, target_id, details) "
                          f"VALUES (:at, 'test', 'account.created', 'account', '1', {json})"), {"at": at, "doc": "{}"})
        if postgres:  # where the sequence stood when event 7 was written
            conn.execute(text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), 7)"))


def events(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT id, topic, payload FROM outbox ORDER BY id"))]


def new_event(engine) -> int:
    with engine.begin() as conn:
        payload = "CAST('{}' AS jsonb)" if engine.dialect.name == "postgresql" else "'{}'"
        return conn.execute(text(f"INSERT INTO outbox (created_at, topic, payload) VALUES (:at, 'test', {payload}) "
                                 f"RETURNING id"), {"at": stored(engine, OPENED)}).scalar_one()


def refusal(engine, statement: str) -> str:
    with pytest.raises(DBAPIError) as error, engine.begin() as conn:
        conn.execute(text(statement))
    return str(error.value.orig)


def test_0009_keeps_the_events_and_guards_the_documents_already_issued(engine_at_0007):
    engine = engine_at_0007
    load_documents_and_events(engine)
    before = events(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert events(engine) == before
    assert "cannot be deleted" in refusal(engine, "DELETE FROM invoice_lines WHERE invoice_id = 1")
    assert "cannot be deleted" in refusal(engine, "DELETE FROM invoices WHERE id = 2")
    assert "cannot be inserted" in refusal(engine, "INSERT INTO invoice_lines (invoice_id, position, kind, "
                                                   "description, quantity, unit_amount, amount) "
                                                   "VALUES (1, 2, 'extra', 'Extra', 1, 1, 1)")
    if engine.dialect.name == "sqlite":
        assert "cannot be replaced" in refusal(engine, "INSERT OR REPLACE INTO invoices SELECT * FROM invoices "
                                                       "WHERE id = 1")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")).scalar() == 7
    else:
        assert "cannot be truncated" in refusal(engine, "TRUNCATE invoice_lines")
    assert "append-only" in refusal(engine, "DELETE FROM audit_log")

    with engine.connect() as conn:  # the retention batch still deletes them
        with conn.begin():
            delete_invoices(conn, [1, 2])
        assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM invoice_lines")).scalar() == 0

    with engine.begin() as conn:  # the retention batch deletes the latest events (R10.1)
        conn.execute(text("DELETE FROM outbox WHERE id >= 3"))
    assert new_event(engine) == 8


def test_0009_back_and_again_with_the_events(engine_at_0007):
    engine = engine_at_0007
    load_documents_and_events(engine)
    before = events(engine)
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0007")
    assert current_revision(engine) == "0007"
    assert events(engine) == before
    with engine.begin() as conn:  # 0007's rules again: lines may be deleted
        conn.execute(text("DELETE FROM invoice_lines WHERE invoice_id = 2"))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert events(engine) == before
    assert new_event(engine) == 8


# -- 0010 -------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0009(request, tmp_path):
    with database_at(request.param, tmp_path, "0009") as engine:
        yield engine


OWNER, ADMIN, REQUESTER = "jeanne@dupont.test", "marc@dupont.test", "cabinet@expert.test"


def load_an_account_deleted_before_0010(engine) -> None:
    """Account 1 deleted by the old retention batch: its people's addresses still in its audit
    entries and its reactivation's reason, its card's last four digits kept. Account 2 lives."""
    postgres = engine.dialect.name == "postgresql"
    json = "CAST(:doc AS jsonb)" if postgres else ":doc"
    at = stored(engine, OPENED)
    with engine.begin() as conn:
        for account_id, name, status in ((1, "account 1 (deleted)", "deleted"), (2, "Live Co", "active")):
            conn.execute(text("INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, "
                              "created_at, updated_at) VALUES (:id, :name, 'en', 'UTC', 'EUR', :status, :name, :at, "
                              ":at)"), {"id": account_id, "name": name, "status": status, "at": at})
        conn.execute(text("INSERT INTO plans (id, code, name, interval, unit_amount, currency, created_at) "
                          "VALUES (1, 'team', 'Team', 'month', 1900, 'EUR', :at)"), {"at": at})
        conn.execute(text("INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, "
                          "periods_invoiced, renews_at, created_at) VALUES (1, 1, 1, 1, 'cancelled', :day, 1, :at, "
                          ":at)"), {"day": date(2026, 1, 1), "at": at})
        conn.execute(text(f"INSERT INTO invoices (id, number, series, sequence, kind, account_id, subscription_id, "
                          f"issue_date, period_start, period_end, currency, subtotal, tax_rate, tax, total, locale, "
                          f"seller, buyer, status, issued_at) VALUES (1, '2026-000001', '2026', 1, 'invoice', 1, 1, "
                          f":day, :day, :day, 'EUR', 1900, '0', 0, 1900, 'en', {json}, {json}, 'open', :at)"),
                     {"day": date(2026, 1, 1), "at": at,
                      "doc": '{"name": "Dupont Plomberie", "line1": "12 rue des Lilas", "country": "FR"}'})
        conn.execute(text("INSERT INTO cards (account_id, token, brand, last4, exp_month, exp_year, status, "
                          "added_by, added_at) VALUES (1, '', 'visa', '0341', 12, 2035, 'deleted', '', :at)"),
                     {"at": at})
        conn.execute(text("INSERT INTO reactivations (account_id, granted_by, reason, granted_at, ends_at, outcome, "
                          "ended_at) VALUES (1, 'support:alice', :reason, :at, :at, 'expired', :at)"),
                     {"reason": f"{OWNER} called", "at": at})
        for actor, action, target_type, target_id, reason, details in (
                ("test", "account.created", "account", "1", "", {"owner": OWNER}),
                ("test", "member.added", "account", "1", "", {"email": ADMIN, "role": "admin"}),
                (REQUESTER, "billing_contact.requested", "account", "1", "", {"email": "compta@dupont.test"}),
                (OWNER, "card.updated", "account", "1", "", {"brand": "visa", "last4": "0341"}),
                ("support:alice", "ownership.transferred", "account", "1", f"{OWNER} left Dupont Plomberie",
                 {"from": OWNER, "to": ADMIN}),
                ("support:alice", "subscription.seats_changed", "subscription", "1", f"asked by {ADMIN}",
                 {"from": 1, "to": 2}),
                ("support:alice", "credit_note.issued", "invoice", "2026-000001", f"asked by {OWNER}", {}),
                ("test", "account.created", "account", "2", "", {"owner": "boss@live.test"})):
            conn.execute(text(f"INSERT INTO audit_log (at, actor, action, target_type, target_id, reason, details) "
                              f"VALUES (:at, :actor, :action, :type, :target, :reason, {json})"),
                         {"at": at, "actor": actor, "action": action, "type": target_type, "target": target_id,
                          "reason": reason, "doc": dumps(details)})


def audit_entries(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, at, actor, action, target_type, target_id, reason, details "
                                 "FROM audit_log ORDER BY id")).all()
    return [(*row[:7], loads(row[7]) if isinstance(row[7], str) else row[7]) for row in rows]


def test_0010_gives_the_people_of_accounts_deleted_before_it_pseudonyms_and_guards_the_log(engine_at_0009):
    engine = engine_at_0009
    load_an_account_deleted_before_0010(engine)
    before = audit_entries(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    after = audit_entries(engine)

    assert [row[:2] + row[3:6] for row in after] == [row[:2] + row[3:6] for row in before]
    assert [(actor, reason, details) for _, _, actor, _, _, _, reason, details in after] == [
        ("test", "", {"owner": "account-1/person-1"}),
        ("test", "", {"email": "account-1/person-2", "role": "admin"}),
        ("account-1/person-3", "", {"email": "account-1/person-4"}),
        ("account-1/person-1", "", {"brand": "visa", "last4": ""}),
        ("support:alice", "account-1/person-1 left [deleted]", {"from": "account-1/person-1",
                                                                 "to": "account-1/person-2"}),
        ("support:alice", "asked by account-1/person-2", {"from": 1, "to": 2}),
        ("support:alice", "asked by account-1/person-1", {}),
        ("test", "", {"owner": "boss@live.test"}),  # a live account's, as it was
    ]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reason FROM reactivations")).scalar_one() == "account-1/person-1 called"
        assert conn.execute(text("SELECT last4 FROM cards")).scalar_one() == ""
    assert "append-only" in refusal(engine, "UPDATE audit_log SET actor = 'someone else'")
    assert "append-only" in refusal(engine, "DELETE FROM audit_log WHERE id = 1")


def test_0010_back_and_again(engine_at_0009):
    engine = engine_at_0009
    load_an_account_deleted_before_0010(engine)
    upgrade(engine)
    done = audit_entries(engine)
    command.downgrade(alembic_config(engine), "0009")
    assert current_revision(engine) == "0009"
    assert "append-only" in refusal(engine, "UPDATE audit_log SET actor = 'someone else'")
    if engine.dialect.name == "sqlite":  # 0009's writers still get through, and no other
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO document_writes (purpose) VALUES ('purging')"))
            conn.execute(text("DELETE FROM document_writes"))
        assert "CHECK" in refusal(engine, "INSERT INTO document_writes (purpose) VALUES ('pseudonymising')")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert audit_entries(engine) == done  # nothing left to rewrite the second time


# -- 0011 -------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0010(request, tmp_path):
    with database_at(request.param, tmp_path, "0010") as engine:
        yield engine


def load_cases_by_position(engine) -> None:
    """Four accounts' open cases as 0010 kept them: by position in the policy's steps.

    1: three steps taken under a policy of other names, the third's notice waiting; 2: at position
    3 with no step recorded (the default policy's suspension_warning, day 21); 3: no step yet;
    4: a policy that gave two positions one name."""
    at = stored(engine, OPENED)
    with engine.begin() as conn:
        for account in (1, 2, 3, 4):
            conn.execute(text("INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, "
                              "created_at, updated_at, banner) VALUES (:id, 'Acme', 'en', 'UTC', 'USD', 'past_due', "
                              "'Acme', :at, :at, 'none')"), {"id": account, "at": at})
        for case, last_step, awaiting in ((1, 2, 2), (2, 3, None), (3, -1, None), (4, 1, None)):
            conn.execute(text("INSERT INTO dunning_cases (id, account_id, day0, status, last_step, next_step_at, "
                              "awaiting_step, opened_at) VALUES (:case, :case, :day0, 'open', :last, :at, "
                              ":awaiting, :at)"),
                         {"case": case, "day0": date(2026, 1, 1), "last": last_step, "awaiting": awaiting, "at": at})
        for case, step, name, day in ((1, 0, "first", 0), (1, 1, "second", 3), (1, 2, "third", 10),
                                      (4, 0, "again", 0), (4, 1, "again", 5)):
            conn.execute(text("INSERT INTO dunning_steps (case_id, step, name, day, policy_version, taken_at, "
                              "charge_requested) VALUES (:case, :step, :name, :day, 'v1', :at, 0)"),
                         {"case": case, "step": step, "name": name, "day": day, "at": at})


def cases_by_name(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT id, last_step_name, last_step_day, awaiting_step_name FROM dunning_cases ORDER BY id"))]


def test_0011_cases_keep_the_names_of_the_steps_they_took_and_take_each_name_once(engine_at_0010):
    engine = engine_at_0010
    load_cases_by_position(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert cases_by_name(engine) == [(1, "third", 10, "third"), (2, "suspension_warning", 21, None),
                                     (3, None, None, None), (4, "again@1", 5, None)]
    with engine.connect() as conn:
        names = conn.execute(text("SELECT case_id, step, name FROM dunning_steps ORDER BY id")).all()
    assert [tuple(row) for row in names] == [(1, 0, "first"), (1, 1, "second"), (1, 2, "third"), (4, 0, "again"),
                                             (4, 1, "again@1")]
    with engine.connect() as conn:  # the first sweep reschedules every open case once
        assert conn.execute(text("SELECT count(*) FROM dunning_schedule")).scalar_one() == 0
    with pytest.raises(IntegrityError), engine.begin() as conn:  # a named step, once per case
        conn.execute(text("INSERT INTO dunning_steps (case_id, step, name, day, policy_version, taken_at, "
                          "charge_requested) VALUES (1, 7, 'second', 3, 'v2', :at, 0)"), {"at": stored(engine, WARNED)})
    with engine.begin() as conn:  # a position another policy gave to another step
        conn.execute(text("INSERT INTO dunning_steps (case_id, step, name, day, policy_version, taken_at, "
                          "charge_requested) VALUES (1, 1, 'fourth', 12, 'v2', :at, 0)"),
                     {"at": stored(engine, WARNED)})


def test_0011_back_and_again(engine_at_0010):
    engine = engine_at_0010
    load_cases_by_position(engine)
    upgrade(engine)
    named = cases_by_name(engine)
    command.downgrade(alembic_config(engine), "0010")
    assert current_revision(engine) == "0010"
    with engine.connect() as conn:
        positions = conn.execute(text("SELECT id, last_step, awaiting_step FROM dunning_cases ORDER BY id")).all()
    assert [tuple(row) for row in positions] == [(1, 2, 2), (2, 3, None), (3, -1, None), (4, 1, None)]
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert cases_by_name(engine) == named


def test_the_head_revision_read_from_the_migration_files_is_alembic_s():
    # Every command compares the database with it, without importing Alembic (a tenth of a second).
    from renewly.adapters.db.engine import alembic_head_revision
    assert head_revision() == alembic_head_revision()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_revision_read_without_alembic_is_alembic_s(kind, tmp_path):
    from alembic.runtime.migration import MigrationContext
    with database_at(kind, tmp_path, "0004") as engine:
        with engine.connect() as connection:
            alembic_says = MigrationContext.configure(connection).get_current_revision()
        assert current_revision(engine) == alembic_says == "0004"


def test_an_empty_database_has_no_revision(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    assert current_revision(engine) is None
    engine.dispose()


# -- 0012 -------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0011(request, tmp_path):
    with database_at(request.param, tmp_path, "0011") as engine:
        yield engine


def test_0012_accounts_keep_their_rows_and_take_one_account_per_import_key(engine_at_0011):
    engine = engine_at_0011
    account = ("INSERT INTO accounts (name, locale, timezone, currency, status, buyer_name, created_at, updated_at"
               "{column}) VALUES ('Acme', 'en', 'UTC', 'USD', 'active', 'Acme', :at, :at{value})")
    with engine.begin() as conn:
        conn.execute(text(account.format(column="", value="")), {"at": stored(engine, OPENED)})
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    keyed = text(account.format(column=", external_key", value=", :key"))
    with engine.begin() as conn:
        assert conn.execute(text("SELECT external_key FROM accounts")).scalars().all() == [None]
        conn.execute(keyed, {"at": stored(engine, OPENED), "key": None})  # accounts created one by one: no key
        conn.execute(keyed, {"at": stored(engine, OPENED), "key": "crm-1"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(keyed, {"at": stored(engine, OPENED), "key": "crm-1"})

    command.downgrade(alembic_config(engine), "0011")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 3
    upgrade(engine)
    assert current_revision(engine) == head_revision()


# -- 0015 -------------------------------------------------------------------------------------------

def before_0015() -> str:
    """The revision 0015 follows (the chain is set when the branches meet)."""
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(alembic_config(None)).get_revision("0015").down_revision


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_before_0015(request, tmp_path):
    with database_at(request.param, tmp_path, before_0015()) as engine:
        yield engine


def test_0015_e_mails_written_before_it_are_due_at_once_and_the_outbox_keeps_its_ids(engine_before_0015):
    engine = engine_before_0015
    row = "INSERT INTO outbox (created_at, topic, account_id, payload) VALUES (:at, :topic, 1, :payload)"
    with engine.begin() as conn:
        for topic in ("email", "account.created"):
            conn.execute(text(row), {"at": stored(engine, OPENED), "topic": topic, "payload": '{"recipients": []}'})
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, attempts, next_attempt_at, claimed_until, failed_at, last_error "
                                 "FROM outbox ORDER BY id")).all() == [(1, 0, None, None, None, None),
                                                                       (2, 0, None, None, None, None)]
        due = text("SELECT id FROM outbox WHERE topic = 'email' AND delivered_at IS NULL AND failed_at IS NULL")
        assert conn.execute(due).scalars().all() == [1]

    command.downgrade(alembic_config(engine), before_0015())
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox WHERE id = 2"))
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(row), {"at": stored(engine, OPENED), "topic": "email", "payload": "{}"})
        assert conn.execute(text("SELECT max(id) FROM outbox")).scalar_one() == 3  # id 2 is never given again


# -- 0014: the job queue's schema, frozen ---------------------------------------------------------------

def test_0014_applies_procrastinates_schema_as_frozen_beside_it_which_is_the_installed_procrastinates():
    """A database made by 0014 has procrastinate 3.10.0's schema whatever procrastinate is
    installed; that is the installed one's, as long as no revision brings a later one. An upgrade
    of procrastinate fails here until a revision applies its migrations' SQL (0014's docstring),
    and this test then names the version that revision brings the schema to."""
    from importlib import resources
    from importlib.metadata import version
    from pathlib import Path

    import renewly.adapters.db.engine as engine
    frozen = Path(engine.__file__).parent / "migrations" / "versions" / "0014_procrastinate_schema.sql"
    assert version("procrastinate") == "3.10.0", "procrastinate was upgraded: its schema needs a revision"
    shipped = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    assert frozen.read_text(encoding="utf-8").split("\n", 3)[3] == shipped


# -- 0019: each queue worker's own queue ----------------------------------------------------------------

def before_0019() -> str:
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(alembic_config(None)).get_revision("0019").down_revision


@pytest.mark.postgres_only
def test_0019_a_workers_own_queue_goes_with_its_worker_and_back_and_again(tmp_path):
    with database_at("postgresql", tmp_path, before_0019()) as engine:
        upgrade(engine)
        with engine.begin() as conn:
            worker, other = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                              "VALUES (now()), (now()) RETURNING id")).scalars().all()
            conn.execute(text("INSERT INTO worker_queues VALUES (:id, 'slices@a@w')"), {"id": worker})
            with pytest.raises(IntegrityError, match="worker_queues_queue_name_key"), conn.begin_nested():
                conn.execute(text("INSERT INTO worker_queues VALUES (:id, 'slices@a@w')"), {"id": other})  # one owner
            conn.execute(text("DELETE FROM procrastinate_workers"))  # stopped, or pruned as dead
            assert conn.execute(text("SELECT count(*) FROM worker_queues")).scalar_one() == 0
        command.downgrade(alembic_config(engine), before_0019())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('worker_queues')")).scalar() is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
