"""The outbox writer: the one contract delivery reads (issue 10, item 4). Its rows, built by
`event` and `email`, land as they were built, one by one or a slice at once, on both engines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select

from renewly.adapters.db.tables import outbox
from renewly.outbox import writer
from renewly.outbox.writer import OutboxRow

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SRC = Path(__file__).resolve().parents[2] / "src" / "renewly"


def outbox_rows(app) -> list[dict]:
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(outbox).order_by(outbox.c.id))]


# -- building rows ------------------------------------------------------------------------------------

def test_an_event_is_a_row_in_the_tables_column_order():
    row = writer.event(AT, "account.created", 7, {"account_id": 7})
    assert row == OutboxRow(created_at=AT, topic="account.created", account_id=7, payload={"account_id": 7})
    assert tuple(OutboxRow._fields) == writer.COLUMNS == ("created_at", "topic", "account_id", "payload")


def test_an_event_of_a_topic_delivery_does_not_know_is_refused():
    with pytest.raises(ValueError, match="no outbox topic 'account.renamed'"):
        writer.event(AT, "account.renamed", 7, {})


def test_an_email_is_not_an_event():
    with pytest.raises(ValueError, match="built by `email`"):
        writer.event(AT, writer.EMAIL, 7, {"subject": "Hello"})


def test_an_email_carries_its_rendered_text_then_what_it_is_about():
    row = writer.email(AT, 7, kind="payment_confirmed", locale="fr", recipients=["owner@acme.test", "ap@acme.test"],
                       subject="Paiement reçu", body="Merci.", html="<p>Merci.</p>",
                       about={"case_id": 3, "invoices": ["2026-000001"]})
    assert (row.created_at, row.topic, row.account_id) == (AT, "email", 7)
    assert list(row.payload.items()) == [
        ("kind", "payment_confirmed"), ("locale", "fr"), ("recipients", ["owner@acme.test", "ap@acme.test"]),
        ("subject", "Paiement reçu"), ("body", "Merci."), ("html", "<p>Merci.</p>"), ("case_id", 3),
        ("invoices", ["2026-000001"])]


def test_an_emails_context_cannot_replace_its_text():
    with pytest.raises(ValueError, match="cannot replace its text: \\['subject'\\]"):
        writer.email(AT, 7, kind="invoice", locale="en", recipients=[], subject="Invoice", body="...", html="...",
                     about={"subject": "Something else"})


def test_an_email_to_billing_contacts_keeps_their_ids_and_the_footer_of_their_removal_link():
    footer = {"text": "Leave: {removal_url}", "html": "<p>{removal_url}</p>"}
    row = writer.email(AT, 7, kind="invoice", locale="en", recipients=["owner@acme.test", "ap@acme.test"],
                       subject="Invoice", body="...", html="...", contacts={"ap@acme.test": 4},
                       removal_footer=footer, attachments=[{"invoice_id": 9, "filename": "invoice-1.pdf"}])
    assert (row.payload["contacts"], row.payload["removal_footer"]) == ({"ap@acme.test": 4}, footer)
    assert row.payload["attachments"] == [{"invoice_id": 9, "filename": "invoice-1.pdf"}]
    with pytest.raises(ValueError, match="needs its removal footer"):
        writer.email(AT, 7, kind="invoice", locale="en", recipients=["ap@acme.test"], subject="Invoice", body="...",
                     html="...", contacts={"ap@acme.test": 4})


def test_every_topic_is_written_somewhere_and_every_written_topic_is_known():
    """The list delivery reads is the list the code writes: no topic missing, none left over."""
    source = "\n".join(path.read_text() for path in SRC.rglob("*.py") if path.name != "writer.py")
    # What comes between `writer.event(` and its payload: the instant, the topic, the account.
    heads = [re.split(r",\s*\{", call, maxsplit=1)[0] for call in source.split("writer.event(")[1:]]
    written = {topic for head in heads for topic in re.findall(r"\"([a-z_]+\.[a-z_]+)\"", head)}
    dynamic = {"invoice.issued", "credit_note.issued",  # f"{draft.kind}.issued" (billing/issuing.py)
               "payment.succeeded", "payment.declined"}  # f"payment.{outcome}" (payments/attempts.py)
    assert sum('f"{draft.kind}.issued"' in head or 'f"payment.{result.outcome.value}"' in head
               for head in heads) == 2
    assert written | dynamic == writer.TOPICS - {writer.EMAIL}


# -- writing rows -------------------------------------------------------------------------------------

def test_one_row_lands_as_built_undelivered(app):
    writer_row = writer.event(AT, "batch.row_parked", None, {"batch": "renew", "subject": "subscription",
                                                             "subject_id": 12, "reason": "ValueError: no"})
    with app.engine.begin() as conn:
        writer.write(conn, writer_row)
    [row] = outbox_rows(app)
    assert row == {"id": row["id"], "created_at": AT, "topic": "batch.row_parked", "account_id": None,
                   "payload": writer_row.payload, "delivered_at": None,
                   # Never tried by delivery (renewly.mail.delivery): due at once.
                   "attempts": 0, "next_attempt_at": None, "claimed_until": None, "failed_at": None,
                   "last_error": None}


def test_many_rows_land_in_their_order_with_increasing_ids(app):
    rows = [writer.event(AT + timedelta(seconds=n), "dunning.steps_taken", n,
                         {"case_id": n, "steps": ["day_0"], "notice": "given"}) for n in range(1, 6)]
    rows.insert(2, writer.email(AT, 3, kind="day_0", locale="en", recipients=["owner@acme.test"],
                                subject="Payment failed", body="Hello", html="<p>Hello</p>",
                                about={"case_id": 3, "attempts": [None, 4]}))
    with app.engine.begin() as conn:
        writer.write_many(conn, rows)
    found = outbox_rows(app)
    assert [OutboxRow(r["created_at"], r["topic"], r["account_id"], r["payload"]) for r in found] == rows
    assert [r["id"] for r in found] == sorted(r["id"] for r in found)
    assert {r["delivered_at"] for r in found} == {None}


def test_one_by_one_and_in_bulk_write_the_same_rows(app):
    """A use case and a batch writing the same thing leave the same rows: same instant (an aware
    time in another zone is stored as UTC), same JSON, same NULLs."""
    paris = timezone(timedelta(hours=1))
    built = [writer.event(AT.astimezone(paris), "account.dunning_state", 9,
                          {"status": "past_due", "banners": {"owner": "payment_failed", "admin": None}}),
             writer.email(AT, 9, kind="invoice", locale="fr", recipients=[], subject="Facture", body="Émise.\n",
                          html="<p>Émise.</p>", about={"invoice": "2026-000009"})]
    with app.engine.begin() as conn:
        for row in built:
            writer.write(conn, row)
        writer.write_many(conn, built)
    one_by_one, in_bulk = [[{k: v for k, v in r.items() if k != "id"} for r in half]
                           for half in (outbox_rows(app)[:2], outbox_rows(app)[2:])]
    assert one_by_one == in_bulk
    assert one_by_one[0]["created_at"] == AT and one_by_one[0]["created_at"].tzinfo == UTC


def test_many_rows_may_come_from_a_generator_and_none_writes_nothing(app):
    with app.engine.begin() as conn:
        writer.write_many(conn, [])
        writer.write_many(conn, (row for row in ()))
        writer.write_many(conn, (writer.event(AT, "account.deleted", n, {"account_id": n}) for n in (4, 2)))
    assert [(r["topic"], r["account_id"]) for r in outbox_rows(app)] == [("account.deleted", 4),
                                                                           ("account.deleted", 2)]


def test_a_slice_of_rows_is_one_statement_not_one_per_row(app):
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.engine.begin() as conn:
        sqlalchemy_event.listen(conn, "before_cursor_execute", count)
        writer.write_many(conn, [writer.event(AT, "account.deleted", n, {"account_id": n}) for n in range(500)])
        sqlalchemy_event.remove(conn, "before_cursor_execute", count)
    # SQLite: one executemany; PostgreSQL: one COPY, sent by the driver's cursor.
    assert len([s for s in statements if "outbox" in s]) <= 1
    assert len(outbox_rows(app)) == 500


def test_a_row_written_in_a_transaction_that_rolls_back_is_not_there(app):
    with pytest.raises(RuntimeError), app.engine.begin() as conn:
        writer.write(conn, writer.event(AT, "account.created", 1, {"account_id": 1}))
        writer.write_many(conn, [writer.event(AT, "account.created", 2, {"account_id": 2})])
        raise RuntimeError("the change failed")
    assert outbox_rows(app) == []


def test_nothing_but_the_writer_inserts_into_the_outbox():
    """One insert path: the delivery of the next issues reads `outbox/writer.py` alone."""
    inserting = re.compile(r"\boutbox\.insert\(|insert_rows\(\s*\w+,\s*outbox\b")
    found = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
             if path.name != "writer.py" and "migrations" not in path.parts and inserting.search(path.read_text())]
    assert found == []
