"""The database itself keeps the rules a bug or a hand-typed SQL statement could break."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from renewly.adapters.db.bulk import allocate_ids, insert_ignoring_conflicts, insert_rows
from renewly.adapters.db.guards import pseudonymising_audit, writing_documents
from renewly.adapters.db.tables import accounts, audit_log, invoice_lines, invoices, members, outbox
from renewly.billing.invoices import issue_credit_note
from tests.builders import OPERATOR, customer, subscribed

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def refused(app, statement) -> str:
    """Run `statement` and return the database's refusal; nothing it tried is kept."""
    with pytest.raises(DBAPIError) as error:
        with app.engine.begin() as conn:
            conn.execute(statement)
    return str(error.value.orig)


def first_invoice(app):
    with app.engine.connect() as conn:
        return conn.execute(select(invoices).order_by(invoices.c.id)).first()


def test_r1_the_database_refuses_a_second_owner_row(app):
    account_id = customer(app)
    with pytest.raises(IntegrityError):
        with app.engine.begin() as conn:
            conn.execute(members.insert().values(account_id=account_id, email="other@acme.test", role="owner",
                                                 created_at=NOW))
    with app.engine.begin() as conn:  # other roles are not limited
        for email in ("a@acme.test", "b@acme.test"):
            conn.execute(members.insert().values(account_id=account_id, email=email, role="admin", created_at=NOW))
        roles = conn.execute(select(members.c.role).where(members.c.account_id == account_id)).scalars().all()
    assert sorted(roles) == ["admin", "admin", "owner"]


@pytest.mark.parametrize("change", [
    {"subtotal": 0, "tax": 0, "total": 0},
    {"buyer": {"name": "Someone Else", "country": "DE"}},
    {"issue_date": datetime(2026, 1, 2).date()},
    {"number": "2026-000999"},
], ids=["total", "buyer", "issue_date", "number"])
def test_r2_4_an_issued_invoice_cannot_be_changed_even_by_sql(app, change):
    subscribed(app)
    before = first_invoice(app)
    message = refused(app, update(invoices).where(invoices.c.id == before.id).values(**change))
    assert "cannot be changed" in message
    assert first_invoice(app) == before


def test_r2_4_the_lines_of_an_issued_invoice_cannot_be_changed_even_by_sql(app):
    subscribed(app)
    message = refused(app, update(invoice_lines).values(amount=1, description="edited"))
    assert "cannot be changed" in message
    with app.engine.connect() as conn:
        assert conn.execute(select(invoice_lines.c.amount, invoice_lines.c.description)).one().amount == 5700


def test_r2_4_the_status_of_an_issued_invoice_may_change(app):
    subscribed(app)
    invoice = first_invoice(app)
    with app.engine.begin() as conn:
        conn.execute(update(invoices).where(invoices.c.id == invoice.id)
                     .values(status="paid", status_changed_at=datetime(2026, 1, 2, tzinfo=UTC)))
    after = first_invoice(app)._asdict()
    assert (after.pop("status"), after.pop("status_changed_at")) == ("paid", datetime(2026, 1, 2, tzinfo=UTC))
    assert after == {key: value for key, value in invoice._asdict().items()
                     if key not in ("status", "status_changed_at")}


def documents(app) -> tuple[list, list]:
    """Every invoice and every line, in order: compare before and after."""
    with app.engine.connect() as conn:
        return (conn.execute(select(invoices).order_by(invoices.c.id)).all(),
                conn.execute(select(invoice_lines).order_by(invoice_lines.c.id)).all())


def refused_script(app, *statements) -> str:
    """Run `statements` in one transaction and return the database's refusal of the first one
    refused; the transaction is rolled back."""
    with pytest.raises(DBAPIError) as error:
        with app.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    return str(error.value.orig)


def upsert(app, table, row: dict, **changes):
    """INSERT ... ON CONFLICT (id) DO UPDATE: on both engines, a way to overwrite a row by inserting it."""
    with app.engine.connect() as conn:
        insert = insert_ignoring_conflicts(conn)
    statement = insert(table).values(**row)
    return statement.on_conflict_do_update(index_elements=["id"], set_=changes)


def rewrites_of_an_issued_invoice(app, kind: str) -> dict[str, tuple]:
    """Every way a statement could rewrite the first invoice, and the words of its refusal."""
    invoice = first_invoice(app)._asdict()
    with app.engine.connect() as conn:
        line = conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_id == invoice["id"])).first()._asdict()
    cheaper = {**invoice, "subtotal": 1, "tax": 0, "total": 1}
    another = {**line, "id": line["id"] + 100, "position": line["position"] + 1, "description": "one more thing"}
    ways = {
        # Refused as an update on PostgreSQL, as an insert on SQLite (whose insert trigger fires first).
        "upsert of the invoice": ((upsert(app, invoices, cheaper, total=1, subtotal=1, tax=0),),
                                  "issued invoice"),
        "its lines deleted": ((delete(invoice_lines),), "invoice_lines rows cannot be deleted"),
        "a line added": ((invoice_lines.insert().values(**another),), "invoice_lines rows cannot be inserted"),
        "a line upserted": ((upsert(app, invoice_lines, {**line, "amount": 1}, amount=1),),
                            "invoice_lines rows cannot be inserted"),
        "deleted, then issued again": ((delete(invoice_lines), delete(invoices), invoices.insert().values(**cheaper)),
                                       "invoice_lines rows cannot be deleted"),
        "the invoice deleted": ((delete(invoices).where(invoices.c.id == invoice["id"]),),
                                "issued invoices cannot be deleted"),
    }
    if kind == "sqlite":
        # REPLACE deletes the row whose unique key the new row takes, without firing its delete triggers.
        replace = invoices.insert().prefix_with("OR REPLACE")
        ways.update({
            "replaced by id": ((replace.values(**cheaper),), "cannot be replaced"),
            "replaced by number": ((replace.values(**{**cheaper, "id": invoice["id"] + 100, "sequence": 100}),),
                                   "cannot be replaced"),
            "replaced by series and sequence": ((replace.values(**{**cheaper, "id": invoice["id"] + 100,
                                                                   "number": "2026-000100"}),), "cannot be replaced"),
            "replaced by subscription period": ((replace.values(**{**cheaper, "id": invoice["id"] + 100,
                                                                   "number": "2026-000100", "sequence": 100}),),
                                                "cannot be replaced"),
            "a line replaced": ((invoice_lines.insert().prefix_with("OR REPLACE").values(**{**line, "amount": 1}),),
                                "invoice_lines rows cannot be inserted"),
        })
    else:
        # TRUNCATE fires no row trigger: a statement trigger refuses it, also when cascaded.
        ways.update({
            "invoice_lines truncated": ((text("TRUNCATE invoice_lines"),), "invoice_lines cannot be truncated"),
            "invoices truncated": ((text("TRUNCATE invoices CASCADE"),), "cannot be truncated"),
            "accounts truncated, cascading": ((text("TRUNCATE accounts CASCADE"),), "cannot be truncated"),
        })
    return ways


def test_r2_4_no_statement_rewrites_an_issued_invoice(app, db_kind):
    subscribed(app)
    before = documents(app)
    problems = []
    for way, (statements, words) in rewrites_of_an_issued_invoice(app, db_kind).items():
        try:
            message = refused_script(app, *statements)
        except pytest.fail.Exception:
            message = "not refused"
        if words not in message or documents(app) != before:
            problems.append(f"{way}: {message}")
    assert problems == []


def test_r2_4_lines_written_in_bulk_outside_issuing_are_refused(app):
    """On PostgreSQL a COPY: statement triggers fire for it as for an INSERT."""
    subscribed(app)
    before = documents(app)
    line = before[1][0]._asdict()
    with pytest.raises(DBAPIError) as error:
        with app.engine.begin() as conn:
            insert_rows(conn, invoice_lines, [{**line, "id": line["id"] + 100, "position": 2}])
    assert "invoice_lines rows cannot be inserted" in str(error.value.orig)
    assert documents(app) == before


def test_r2_4_the_way_past_the_triggers_is_open_only_inside_its_block(app):
    subscribed(app)
    before = documents(app)
    with pytest.raises(DBAPIError):
        with app.engine.begin() as conn:
            with writing_documents(conn, "purging"):
                pass
            conn.execute(delete(invoice_lines))
    with pytest.raises(RuntimeError), app.engine.begin() as conn, writing_documents(conn, "purging"):
        raise RuntimeError("the transaction is rolled back")
    assert "invoice_lines rows cannot be deleted" in refused(app, delete(invoice_lines))
    with pytest.raises(DBAPIError):  # issuing lets lines in, never out
        with app.engine.begin() as conn, writing_documents(conn, "issuing"):
            conn.execute(delete(invoice_lines))
    assert documents(app) == before


def test_r10_2_the_retention_batch_way_deletes_documents_and_their_lines(app):
    subscribed(app)
    with app.engine.begin() as conn, writing_documents(conn, "purging"):
        for table in ("payment_retries", "dunning_case_invoices", "payment_attempts", "pending_items"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(delete(invoice_lines))
        conn.execute(delete(invoices))
    assert documents(app) == ([], [])


def test_the_audit_log_refuses_update_and_delete(app, db_kind):
    customer(app)
    with app.engine.connect() as conn:
        entries = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    assert entries
    entry = entries[0]._asdict()
    assert "append-only" in refused(app, update(audit_log).values(actor="someone else"))
    assert "append-only" in refused(app, delete(audit_log))
    assert "append-only" in refused(app, upsert(app, audit_log, {**entry, "actor": "x"}, actor="someone else"))
    with app.engine.begin() as conn:  # purging documents is no way past the audit log
        with pytest.raises(DBAPIError), writing_documents(conn, "purging"):
            conn.execute(delete(audit_log))
    if db_kind == "sqlite":
        replace = audit_log.insert().prefix_with("OR REPLACE").values(**{**entry, "actor": "someone else"})
        assert "append-only" in refused(app, replace)
    else:
        assert "audit_log cannot be truncated (append-only)" in refused(app, text("TRUNCATE audit_log"))
    with app.engine.connect() as conn:
        assert conn.execute(select(audit_log).order_by(audit_log.c.id)).all() == entries


def refused_while_pseudonymising(app, statement) -> str:
    with pytest.raises(DBAPIError) as error:
        with app.engine.begin() as conn, pseudonymising_audit(conn):
            conn.execute(statement)
    return str(error.value.orig)


def test_r10_1_only_the_retention_batch_rewrites_audit_entries_and_only_a_deleted_accounts_personal_fields(app):
    """Migration 0010: the way past the append-only audit log is open inside `pseudonymising_audit`
    only, for actor, reason and details only, of entries about an account already deleted only."""
    gone, _ = subscribed(app, owner="owner@gone.test")
    issue_credit_note(app, "2026-000001", reason="goodwill", amount=100, actor=OPERATOR)
    live = customer(app, name="Globex", owner="owner@globex.test")
    with app.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == gone).values(status="deleted"))
        entries = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    of_live = (audit_log.c.target_type == "account") & (audit_log.c.target_id == str(live))
    of_gone = audit_log.c.id.in_([entry.id for entry in entries if entry.target_type != "plan"]) & ~of_live
    assert {entry.target_type for entry in entries} == {"account", "plan", "subscription", "invoice"}

    assert "append-only" in refused(app, update(audit_log).where(of_gone).values(actor="someone else"))
    others = {"at": datetime(2030, 1, 1, tzinfo=UTC), "action": "x.y", "target_type": "plan", "target_id": "99",
              "id": 999}
    for column, value in others.items():
        message = refused_while_pseudonymising(app, update(audit_log).where(of_gone).values({column: value}))
        assert "rewrites only actor, reason and details" in message, column
    assert "only the entries of deleted accounts" in refused_while_pseudonymising(
        app, update(audit_log).where(of_live).values(actor="someone else"))
    assert "only the entries of deleted accounts" in refused_while_pseudonymising(
        app, update(audit_log).where(audit_log.c.target_type == "plan").values(actor="someone else"))
    assert "append-only" in refused_while_pseudonymising(app, delete(audit_log).where(of_gone))
    with app.engine.connect() as conn:
        assert conn.execute(select(audit_log).order_by(audit_log.c.id)).all() == entries

    with app.engine.begin() as conn:
        with pseudonymising_audit(conn):
            rewritten = conn.execute(update(audit_log).where(of_gone).values(
                actor="account-1/person-1", reason="", details={"owner": "account-1/person-1"})).rowcount
        with pytest.raises(DBAPIError), conn.begin_nested():  # closed again after the block
            conn.execute(update(audit_log).where(of_gone).values(actor="someone else"))
    assert rewritten == len(entries) - 2  # all but the plan's and the live account's
    with app.engine.connect() as conn:
        after = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    assert [(e.id, e.at, e.action, e.target_type, e.target_id) for e in after] == \
           [(e.id, e.at, e.action, e.target_type, e.target_id) for e in entries]
    assert {e.actor for e in after if e.target_type != "plan" and e.target_id != str(live)} == {"account-1/person-1"}


def test_an_outbox_id_is_never_given_twice_even_after_the_rows_above_it_are_deleted(app):
    """Webhook consumers may drop an event whose id they have seen (SQLite once took max(id) + 1)."""
    customer(app)
    customer(app, name="Globex", owner="owner@globex.test")
    with app.engine.begin() as conn:
        given = conn.execute(select(func.max(outbox.c.id))).scalar_one()
        conn.execute(delete(outbox))  # as the retention batch deletes an account's rows (R10.1)
        insert_rows(conn, outbox, [{"created_at": NOW, "topic": "account.deleted", "account_id": 1,
                                    "payload": {"account_id": 1}, "delivered_at": None}])
        assert conn.execute(select(outbox.c.id)).scalar_one() == given + 1
        conn.execute(delete(outbox))
        # Ids taken ahead (as for invoices) come after them too, and the next row after those.
        taken = allocate_ids(conn, outbox, 2)
        assert taken == [given + 2, given + 3]
        insert_rows(conn, outbox, [{"id": taken[0], "created_at": NOW, "topic": "a", "account_id": None,
                                    "payload": {}, "delivered_at": None}])
        conn.execute(delete(outbox))
        insert_rows(conn, outbox, [{"created_at": NOW, "topic": "b", "account_id": None, "payload": {},
                                    "delivered_at": None}])
        assert conn.execute(select(outbox.c.id)).scalar_one() > taken[0]


def test_r2_1_the_database_refuses_a_second_invoice_for_the_same_subscription_period(app):
    subscribed(app)
    row = first_invoice(app)._asdict()
    copy = {**row, "id": row["id"] + 100, "number": "2026-000100", "sequence": 100}
    with pytest.raises(IntegrityError):
        with app.engine.begin() as conn:
            conn.execute(invoices.insert().values(**copy))


def test_r2_1_on_postgresql_an_invoice_cannot_name_another_accounts_subscription(pg_app):
    subscribed(pg_app)
    other_account = customer(pg_app, name="Globex", owner="owner@globex.test")
    row = first_invoice(pg_app)._asdict()
    stray = {**row, "id": row["id"] + 100, "number": "2026-000100", "sequence": 100, "account_id": other_account,
             "period_start": datetime(2027, 1, 1).date()}
    message = refused(pg_app, invoices.insert().values(**stray))
    assert "fk_invoices_account_id_subscriptions" in message


def test_r2_4_on_postgresql_a_credit_note_names_the_invoice_it_corrects(pg_app):
    subscribed(pg_app)
    row = first_invoice(pg_app)._asdict()
    orphan = {**row, "id": row["id"] + 100, "number": "CN-2026-000001", "series": "CN-2026", "sequence": 1,
              "kind": "credit_note", "subscription_id": None, "credited_invoice_id": None}
    assert "ck_invoices_parent" in refused(pg_app, invoices.insert().values(**orphan))


def test_a_bulk_write_refused_by_the_database_raises_what_any_other_write_would(app):
    """COPY goes through the driver's own cursor on PostgreSQL; a unique key it breaks must still
    come out as SQLAlchemy's IntegrityError, which the batches catch (two collectors racing for one
    invoice: the second is refused its attempt and carries on)."""
    customer(app)
    with app.engine.connect() as conn:
        owner = conn.execute(select(members).where(members.c.role == "owner")).one()._asdict()
    duplicate = {**owner, "id": owner["id"] + 100, "role": "admin"}  # same account and e-mail
    with pytest.raises(IntegrityError):
        with app.engine.begin() as conn:
            insert_rows(conn, members, [duplicate])
