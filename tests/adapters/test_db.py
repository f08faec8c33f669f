"""The database itself keeps the rules a bug or a hand-typed SQL statement could break."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from renewly.adapters.db.bulk import insert_rows
from renewly.adapters.db.tables import audit_log, invoice_lines, invoices, members
from tests.builders import customer, subscribed

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


def test_the_audit_log_refuses_update_and_delete(app):
    customer(app)
    with app.engine.connect() as conn:
        entries = conn.execute(select(audit_log)).all()
    assert entries
    assert "append-only" in refused(app, update(audit_log).values(actor="someone else"))
    assert "append-only" in refused(app, delete(audit_log))
    with app.engine.connect() as conn:
        assert conn.execute(select(audit_log)).all() == entries


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
