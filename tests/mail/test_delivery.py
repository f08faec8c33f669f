"""E-mails leave the outbox over SMTP, at least once, to a real server on loopback (aiosmtpd):
each with the recipients, subject and headers of its row and a Message-ID fixed by it; a
temporary failure (4xx, no connection, a dropped connection, a timeout) is tried again later
until it passes, a 5xx marks the row failed with the server's reply; due = delivered + failed,
and an e-mail reaches the server twice only when a crash came between sending and marking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import outbox
from renewly.adapters.mail.port import MailMisconfigured
from renewly.mail import delivery
from renewly.mail.delivery import deliver_due, next_mail_at
from renewly.outbox import writer
from renewly.outbox.reading import list_outbox
from tests.conftest import START
from tests.mail.smtp_server import DROP, KEEP_THEN_DROP, SmtpServer, mail_settings


def write_emails(app, count: int, *, recipients=None, subject="Your invoice", locale="en") -> list[int]:
    """`count` e-mails written now, as a use case writes them; their outbox ids."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        writer.write_many(conn, [
            writer.email(now, 1, kind="invoice", locale=locale, recipients=recipients or [f"owner{n}@buyer.example"],
                         subject=f"{subject} {n}", body=f"Hello {n},\nyour invoice is attached.\n",
                         html=f"<p>Hello {n},</p><p>your invoice is attached.</p>")
            for n in range(count)])
        return list(conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars())[-count:]


def rows(app) -> dict[int, dict]:
    with app.engine.connect() as conn:
        found = conn.execute(select(outbox).where(outbox.c.topic == "email").order_by(outbox.c.id))
        return {row.id: row._asdict() for row in found}


def next_due(app):
    with app.engine.connect() as conn:
        return next_mail_at(conn, app)


def later(app, seconds: float) -> None:
    app.test_clock.set(app.clock.now() + timedelta(seconds=seconds))


def test_each_e_mail_due_is_delivered_once_with_its_row_s_recipients_subject_and_headers(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [first] = write_emails(app, 1, recipients=["owner@buyer.example", "accounting@buyer.example"], locale="fr",
                           subject="Votre facture")

    report = deliver_due(app, app.clock.now())

    assert (report.delivered, report.to_retry, report.failed) == (1, 0, 0)
    [message] = smtp.mailbox.messages
    assert smtp.mailbox.envelopes == [("billing@seller.example", ["owner@buyer.example", "accounting@buyer.example"])]
    assert message["To"] == "owner@buyer.example, accounting@buyer.example"
    assert message["From"] == "Billing <billing@seller.example>"
    assert message["Subject"] == "Votre facture 0"
    assert message["Message-ID"] == f"<renewly.outbox.{first}@seller.example>"
    assert message["Date"].datetime == START
    assert message["Content-Language"] == "fr"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hello 0,\nyour invoice is attached.\n"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello 0,</p><p>your invoice is attached.</p>"
    row = rows(app)[first]
    assert (row["delivered_at"], row["attempts"], row["claimed_until"], row["failed_at"]) == (START, 1, None, None)

    again = deliver_due(app, app.clock.now())
    assert again.delivered == 0 and len(smtp.mailbox.messages) == 1
    assert next_due(app) is None


def test_smtp_down_for_hours_loses_nothing_tries_again_ever_later_then_delivers_once(databases, db_kind):
    down = SmtpServer()  # its port, nobody listening yet: connections are refused
    app = databases.fresh_app(db_kind, mail=mail_settings(down.port, slice_size=4))
    ids = write_emails(app, 10)

    waits = []
    for _ in range(8):  # 1 + 2 + 4 + ... minutes, capped at an hour: about 4 hours down
        report = deliver_due(app, app.clock.now())
        assert (report.delivered, report.to_retry, report.failed) == (0, 10, 0)
        assert "no connection to 127.0.0.1" in report.last_error
        [waited] = {row["next_attempt_at"] - app.clock.now() for row in rows(app).values()}
        waits.append(waited.total_seconds())
        assert deliver_due(app, app.clock.now()).to_retry == 0  # not due again before its time
        later(app, waited.total_seconds())
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert {row["attempts"] for row in rows(app).values()} == {8}

    down.start()
    try:
        report = deliver_due(app, app.clock.now())
    finally:
        down.stop()
    assert (report.delivered, report.resent) == (10, 10)
    assert sorted(down.mailbox.message_ids.values()) == [1] * 10
    assert {row["delivered_at"] for row in rows(app).values()} == {app.clock.now()}
    assert len(ids) == 10


@pytest.mark.parametrize("reply", ["421 4.3.2 closing, try later", "451 4.3.0 local trouble, try later"])
def test_a_4xx_reply_is_tried_again_later_and_delivered_after(databases, db_kind, smtp, reply):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    write_emails(app, 5)
    smtp.mailbox.replies.extend([reply, reply])

    first = deliver_due(app, app.clock.now())
    assert (first.delivered, first.to_retry, first.failed) == (3, 2, 0)
    assert first.last_error == reply
    waiting = [row for row in rows(app).values() if row["delivered_at"] is None]
    assert [(row["last_error"], row["attempts"]) for row in waiting] == [(reply, 1)] * 2

    later(app, 60)
    second = deliver_due(app, app.clock.now())
    assert (second.delivered, second.to_retry) == (2, 0)
    assert sorted(smtp.mailbox.message_ids.values()) == [1] * 5


def test_a_5xx_marks_the_row_failed_with_the_server_s_reply_and_the_others_go(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [gone] = write_emails(app, 1, recipients=["gone@buyer.example"])
    write_emails(app, 2)
    smtp.mailbox.refused["gone@buyer.example"] = "550 5.1.1 no such user"
    smtp.mailbox.replies.append("554 5.6.0 message refused")  # the next accepted recipient's data

    report = deliver_due(app, app.clock.now())

    assert (report.delivered, report.to_retry, report.failed) == (1, 0, 2)
    failed = list_outbox(app, failed=True)
    assert [row["last_error"] for row in failed] == [
        "550 every recipient refused: gone@buyer.example: 550 5.1.1 no such user", "554 5.6.0 message refused"]
    assert failed[0]["id"] == gone and all(row["failed_at"] == START for row in failed)
    later(app, 86_400)
    assert deliver_due(app, app.clock.now()).failed == 0  # failed for good: never sent again


def test_an_e_mail_some_of_whose_recipients_are_refused_is_delivered_to_the_others(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    [row_id] = write_emails(app, 1, recipients=["owner@buyer.example", "gone@buyer.example"])
    smtp.mailbox.refused["gone@buyer.example"] = "550 5.1.1 no such user"

    assert deliver_due(app, app.clock.now()).delivered == 1
    assert smtp.mailbox.envelopes[0][1] == ["owner@buyer.example"]
    assert rows(app)[row_id]["last_error"] == "refused: gone@buyer.example"


def test_a_connection_dropped_in_the_middle_of_the_data_is_sent_again_with_the_same_message_id(
        databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, connections=1))
    write_emails(app, 4)
    # The first drop loses the e-mail; the second loses only the reply: the server kept it.
    smtp.mailbox.replies.extend([DROP, KEEP_THEN_DROP])

    first = deliver_due(app, app.clock.now())
    assert (first.delivered, first.to_retry) == (2, 2)
    later(app, 60)
    second = deliver_due(app, app.clock.now())
    assert (second.delivered, second.to_retry, second.resent) == (2, 0, 2)

    received = smtp.mailbox.message_ids
    assert len(received) == 4
    assert sorted(received.values()) == [1, 1, 1, 2]  # one duplicate: the reply that was lost


def test_a_server_slower_than_the_timeout_is_tried_again_and_nothing_is_lost(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, timeout_seconds=0.2, connections=2))
    write_emails(app, 2)
    smtp.mailbox.latency = 0.5

    first = deliver_due(app, app.clock.now())
    assert (first.delivered, first.to_retry) == (0, 2)
    assert "Timeout" in first.last_error
    smtp.mailbox.latency = 0.05  # slow, within the timeout
    later(app, 60)
    second = deliver_due(app, app.clock.now())
    assert second.delivered == 2
    # A timeout after the data: the server may have kept it; at most once more each.
    assert set(smtp.mailbox.message_ids.values()) <= {1, 2} and len(smtp.mailbox.message_ids) == 2


class CrashAfterSending:
    """A transport that dies, as the process would, once it has sent slice number `crash_at`,
    before the batch marks it."""

    def __init__(self, transport, crash_at: int) -> None:
        self.transport, self.crash_at, self.slices = transport, crash_at, 0

    def session(self):
        crash = self

        class Session:
            def __init__(self, inner):
                self.inner = inner

            def send(self, envelopes):
                answers = self.inner.send(envelopes)
                crash.slices += 1
                if crash.slices == crash.crash_at:
                    raise SystemExit("killed between sending and marking")
                return answers

        from contextlib import contextmanager

        @contextmanager
        def opened():
            with self.transport.session() as inner:
                yield Session(inner)
        return opened()


def test_a_crash_between_sending_and_marking_resends_that_slice_once_with_the_same_message_ids(
        databases, db_kind, smtp, monkeypatch):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, slice_size=4, lease_seconds=600))
    ids = write_emails(app, 10)
    app.__dict__["mailer"] = CrashAfterSending(app.mailer, crash_at=2)  # the real transport, wrapped

    with pytest.raises(SystemExit):
        deliver_due(app, app.clock.now())
    # The slice it died on, sent but not marked, and the next one, claimed while it was sent.
    claimed = [row_id for row_id, row in rows(app).items() if row["claimed_until"] is not None]
    assert claimed == ids[4:10]
    assert deliver_due(app, app.clock.now()).delivered == 0  # they wait for the lease to end

    real_wall_clock = delivery.wall_clock
    monkeypatch.setattr(delivery, "wall_clock", lambda: real_wall_clock() + timedelta(seconds=601))
    report = deliver_due(app, app.clock.now())
    assert (report.delivered, report.resent) == (6, 0)

    received = smtp.mailbox.message_ids
    twice = sorted(message_id for message_id, count in received.items() if count == 2)
    assert twice == sorted(f"<renewly.outbox.{row_id}@seller.example>" for row_id in ids[4:8])
    assert len(received) == 10 and max(received.values()) == 2
    assert all(row["delivered_at"] is not None for row in rows(app).values())


def test_faults_of_every_kind_at_once_due_is_delivered_plus_failed_and_nothing_twice(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, slice_size=7, connections=3))
    write_emails(app, 30)
    write_emails(app, 2, recipients=["gone@buyer.example"])
    smtp.mailbox.refused["gone@buyer.example"] = "550 5.1.1 no such user"
    smtp.mailbox.replies.extend(["451 4.3.0 later", DROP, "421 4.3.2 closing", "550 5.7.1 spam", DROP, "452 full"])

    passes = 0
    while (next_at := next_due(app)) is not None:
        app.test_clock.set(max(next_at, app.clock.now()))
        deliver_due(app, app.clock.now())
        passes += 1
        assert passes < 10

    states = rows(app).values()
    delivered = [row for row in states if row["delivered_at"] is not None]
    failed = [row for row in states if row["failed_at"] is not None]
    assert (len(delivered), len(failed)) == (29, 3)  # due = delivered + failed (the 5xx ones)
    assert sorted(row["last_error"].split()[0] for row in failed) == ["550", "550", "550"]
    assert max(smtp.mailbox.message_ids.values()) == 1 and len(smtp.mailbox.message_ids) == 29


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_server_that_refuses_renewly_s_login_stops_the_batch_and_leaves_every_e_mail_due(databases, db_kind):
    from aiosmtpd.smtp import AuthResult

    # 535 to every login (plain text on loopback, as aiosmtpd allows when told to).
    server = SmtpServer(authenticator=lambda *args: AuthResult(success=False, handled=False), auth_required=True,
                        auth_require_tls=False).start()
    try:
        app = databases.fresh_app(db_kind, mail=mail_settings(server.port, username="renewly", password="wrong"))
        write_emails(app, 3)
        with pytest.raises(MailMisconfigured) as refused:
            deliver_due(app, app.clock.now())
    finally:
        server.stop()
    assert "refused mail.username and mail.password: 535" in refused.value.message
    assert "wrong" not in refused.value.message
    assert {(row["attempts"], row["claimed_until"], row["delivered_at"]) for row in rows(app).values()} == {
        (0, None, None)}


@pytest.mark.postgres_only
def test_two_mail_sends_at_once_never_send_an_e_mail_twice(pg_app, smtp):
    from tests.processes import run_at_once
    write_emails(pg_app, 60)
    smtp.mailbox.latency = 0.01
    environment = {f"RENEWLY_MAIL__{key.upper()}": str(value)
                   for key, value in mail_settings(smtp.port, slice_size=5, connections=2).items()}

    reports = run_at_once(pg_app, ["mail", "send"], gate="outbox", environment=environment)

    assert sum(report["delivered"] for report in reports) == 60
    assert all(report["delivered"] > 0 for report in reports)  # both took slices
    assert len(smtp.mailbox.message_ids) == 60 and max(smtp.mailbox.message_ids.values()) == 1
