"""An operator sends failed e-mails again (renewly.mail.retry): a 5xx marked them failed; put
back, the next delivery sends each as it was, with the Message-ID and Date of its row, so that
the recipient's server recognises the same message. Audit-logged with who asked; asked again
before it leaves, nothing more happens; an e-mail that did not fail is refused and nothing
changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import audit_log, outbox
from renewly.mail.delivery import deliver_due
from renewly.mail.retry import RETRIED, Retried, retry_emails, retry_failed
from renewly.outbox import writer
from renewly.shared.errors import NotAllowed, NotFound
from tests.conftest import START
from tests.mail.smtp_server import mail_settings
from tests.mail.test_delivery import later, rows, write_emails

GONE = "gone@buyer.example"
REFUSAL = "550 5.1.1 mailbox unavailable"


def audit_lines(app) -> list[tuple[str, str, str]]:
    with app.engine.connect() as conn:
        return [(row.actor, row.action, row.target_id) for row in conn.execute(
            select(audit_log).where(audit_log.c.action == RETRIED).order_by(audit_log.c.id))]


def failing(app, smtp, count: int = 1) -> list[int]:
    """`count` e-mails to an address the server refuses for good, sent and failed; and one that passes."""
    smtp.mailbox.refused[GONE] = REFUSAL
    ids = write_emails(app, count, recipients=[GONE])
    write_emails(app, 1)
    report = deliver_due(app, app.clock.now())
    assert (report.delivered, report.failed) == (1, count)
    return ids


def test_a_failed_e_mail_put_back_leaves_at_the_next_delivery_with_the_message_id_and_date_of_its_row(
        databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [row_id] = failing(app, smtp)
    del smtp.mailbox.refused[GONE]  # the recipient's server mended
    later(app, 86_400)

    assert retry_emails(app, [row_id], actor="support@seller.example") == Retried(retried=[row_id])

    row = rows(app)[row_id]
    assert (row["failed_at"], row["next_attempt_at"], row["claimed_until"]) == (None, app.clock.now(), None)
    assert (row["attempts"], row["last_error"]) == (1, f"550 every recipient refused: {GONE}: {REFUSAL}")  # its history
    assert audit_lines(app) == [("support@seller.example", RETRIED, str(row_id))]
    report = deliver_due(app, app.clock.now())
    assert (report.delivered, report.failed) == (1, 0)
    message = smtp.mailbox.messages[-1]
    assert message["Message-ID"] == f"<renewly.outbox.{row_id}@seller.example>"
    assert message["Date"].datetime == START  # written then, sent a day later: the same message
    assert smtp.mailbox.envelopes[-1] == ("billing@seller.example", [GONE])
    assert rows(app)[row_id]["delivered_at"] == app.clock.now()


def test_asked_again_before_it_leaves_a_retry_does_nothing_more_and_after_it_left_it_is_refused(
        databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [row_id] = failing(app, smtp)
    retry_emails(app, [row_id], actor="support@seller.example")
    before = rows(app)[row_id]

    assert retry_emails(app, [row_id], actor="other@seller.example") == Retried(already_due=[row_id])
    assert rows(app)[row_id] == before
    assert len(audit_lines(app)) == 1

    # Refused again by the server: failed again, and put back again.
    deliver_due(app, app.clock.now())
    assert rows(app)[row_id]["failed_at"] is not None
    assert retry_emails(app, [row_id], actor="support@seller.example").retried == [row_id]
    del smtp.mailbox.refused[GONE]
    deliver_due(app, app.clock.now())
    with pytest.raises(NotAllowed, match=f"e-mail {row_id}: delivered already, nothing to send again"):
        retry_emails(app, [row_id], actor="support@seller.example")
    assert len(audit_lines(app)) == 2


def test_an_e_mail_that_did_not_fail_is_refused_and_nothing_changes_for_the_others_asked_with_it(
        databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [failed] = failing(app, smtp)
    delivered = failed + 1
    [waiting] = write_emails(app, 1)
    with app.engine.begin() as conn:
        writer.write(conn, writer.event(app.clock.now(), "invoice.issued", 1, {"number": "2026-000001"}))
        event = conn.execute(select(outbox.c.id).order_by(outbox.c.id.desc())).scalars().first()
    before = rows(app)

    for asked, refusal, said in [
            ([failed, waiting], NotAllowed, f"e-mail {waiting}: not failed, still waiting for delivery"),
            ([failed, delivered], NotAllowed, f"e-mail {delivered}: delivered already"),
            ([failed, event], NotAllowed, f"outbox row {event}: an event, not an e-mail"),
            ([failed, 998, 999], NotFound, "no outbox rows 998, 999")]:
        with pytest.raises(refusal, match=said):
            retry_emails(app, asked, actor="support@seller.example")
    with pytest.raises(NotAllowed, match="name the e-mails"):
        retry_emails(app, [], actor="support@seller.example")
    assert rows(app) == before and audit_lines(app) == []


def test_every_failed_e_mail_is_put_back_at_once_or_those_failed_since_a_day(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    first_day = failing(app, smtp, count=3)
    later(app, 2 * 86_400)
    third_day = failing(app, smtp, count=2)

    since = (app.clock.now() - timedelta(hours=1)).date()
    assert retry_failed(app, since=since, actor="support@seller.example") == Retried(retried=third_day)
    assert {row_id for row_id, row in rows(app).items() if row["failed_at"]} == set(first_day)
    assert retry_failed(app, actor="support@seller.example") == Retried(retried=first_day)
    assert retry_failed(app, actor="support@seller.example") == Retried()  # none left: nothing to do
    assert [target for _, _, target in audit_lines(app)] == [str(row_id) for row_id in third_day + first_day]

    del smtp.mailbox.refused[GONE]
    report = deliver_due(app, app.clock.now())
    assert (report.delivered, report.failed) == (5, 0)
    assert sorted(smtp.mailbox.message_ids[f"<renewly.outbox.{row_id}@seller.example>"]
                  for row_id in first_day + third_day) == [1] * 5
