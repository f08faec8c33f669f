"""`renewly outbox show ID [--eml FILE]` and `outbox list --failed`: e-mails stay readable
without SMTP (the embedded default), exactly as they would be sent."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

from renewly.adapters.mail.message import as_bytes
from renewly.mail.delivery import deliver_due
from renewly.mail.letters import letter_of
from renewly.outbox.reading import outbox_row
from tests.mail.smtp_server import SmtpServer, mail_settings
from tests.mail.test_delivery import write_emails


def test_without_smtp_an_e_mail_reads_with_outbox_show_and_its_eml_is_what_would_be_sent(app, renewly, tmp_path):
    [row_id] = write_emails(app, 1, recipients=["owner@buyer.example"], subject="Votre facture", locale="fr")

    shown = renewly("outbox", "show", str(row_id))
    assert shown.code == 0, shown.err
    assert f"outbox row {row_id}: email" in shown.out and "waiting for delivery" in shown.out
    assert "Subject: Votre facture 0" in shown.out and "your invoice is attached." in shown.out
    assert f"Message-ID: <renewly.outbox.{row_id}@renewly.example>" in shown.out  # the seller's, unconfigured
    assert max(len(line) for line in shown.out.splitlines()) <= 80

    written = renewly("outbox", "show", str(row_id), "--eml", "invoice.eml")
    assert written.code == 0, written.err
    content = (tmp_path / "invoice.eml").read_bytes()
    assert content == as_bytes(letter_of(_row(app, row_id), app.settings.mail, app.settings.seller))
    assert message_from_bytes(content, policy=policy.default)["To"] == "owner@buyer.example"

    as_json = json.loads(renewly("outbox", "show", str(row_id), "--json").out)
    assert (as_json["state"], as_json["message_id"]) == ("waiting", f"<renewly.outbox.{row_id}@renewly.example>")


def test_outbox_show_folds_an_e_mail_s_long_lines_to_80_columns_and_its_eml_keeps_them(app, renewly, tmp_path):
    from renewly.accounts.contacts import request_contact
    from tests.builders import customer
    account_id = customer(app, name="Acme", owner="owner@acme.test")
    request_contact(app, account_id, email="books@accountants.test", requested_by="books@accountants.test")
    row_id = max(row["id"] for row in json.loads(renewly("outbox", "list", "--json").out))

    shown = renewly("outbox", "show", str(row_id))
    assert shown.code == 0, shown.err
    assert max(len(line) for line in shown.out.splitlines()) <= 80
    assert "Nothing changes without your consent" in shown.out

    renewly("outbox", "show", str(row_id), "--eml", "request.eml")
    sent = message_from_bytes((tmp_path / "request.eml").read_bytes(), policy=policy.default)
    assert max(len(line) for line in sent.get_body(("plain",)).get_content().splitlines()) > 80  # as written


def test_outbox_show_never_overwrites_a_file_and_refuses_an_unknown_row_in_one_line(app, renewly, tmp_path):
    [row_id] = write_emails(app, 1)
    (tmp_path / "kept.eml").write_text("someone's file")

    refused = renewly("outbox", "show", str(row_id), "--eml", "kept.eml")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == "error: kept.eml exists: Renewly never overwrites a file it did not make; name a new one\n"
    assert (tmp_path / "kept.eml").read_text() == "someone's file"
    unknown = renewly("outbox", "show", "999")
    assert (unknown.code, unknown.err) == (2, "error: no outbox row 999\n")


def test_outbox_list_failed_shows_the_e_mails_a_5xx_refused_with_the_reason(app, renewly, monkeypatch):
    server = SmtpServer().start()
    try:
        server.mailbox.refused["gone@buyer.example"] = "550 5.1.1 no such user"
        write_emails(app, 1, recipients=["gone@buyer.example"])
        write_emails(app, 1)
        for key, value in mail_settings(server.port).items():
            monkeypatch.setenv(f"RENEWLY_MAIL__{key.upper()}", str(value))
        sent = renewly("mail", "send")
    finally:
        server.stop()
    assert sent.code == 1  # a row failed: said, and exit 1
    assert sent.out == "1 e-mail(s) delivered, 1 failed (renewly outbox list --failed)\n"

    failed = renewly("outbox", "list", "--failed")
    assert failed.code == 0 and "gone@buyer.example" in failed.out and "550 every recipient" in failed.out
    assert max(len(line) for line in failed.out.splitlines()) <= 80
    [row] = json.loads(renewly("outbox", "list", "--failed", "--json").out)
    assert row["last_error"] == "550 every recipient refused: gone@buyer.example: 550 5.1.1 no such user"
    shown = renewly("outbox", "show", str(row["id"]))
    assert "failed" in shown.out and "no such user" in shown.out


def _row(app, row_id):
    from types import SimpleNamespace
    return SimpleNamespace(**outbox_row(app, row_id))


def test_deliver_due_is_not_run_without_smtp(app):
    import pytest

    from renewly.shared.errors import InvalidInput
    with pytest.raises(InvalidInput, match="no SMTP server configured"):
        deliver_due(app, app.clock.now())


def test_outbox_retry_puts_failed_e_mails_back_names_the_actor_and_refuses_one_that_did_not_fail(
        app, renewly, monkeypatch):
    from sqlalchemy import select

    from renewly.adapters.db.tables import audit_log
    server = SmtpServer().start()
    try:
        server.mailbox.refused["gone@buyer.example"] = "550 5.1.1 no such user"
        gone = write_emails(app, 2, recipients=["gone@buyer.example"])
        [delivered] = write_emails(app, 1)
        for key, value in mail_settings(server.port).items():
            monkeypatch.setenv(f"RENEWLY_MAIL__{key.upper()}", str(value))
        assert renewly("mail", "send").code == 1

        refused = renewly("outbox", "retry", str(gone[0]), str(delivered))
        assert (refused.code, refused.out) == (2, "")
        assert refused.err == f"error: e-mail {delivered}: delivered already, nothing to send again\n"
        retried = renewly("outbox", "retry", str(gone[0]))
        assert retried.code == 0, retried.err
        assert " ".join(retried.out.split()) == (f"1 e-mail(s) due again, with the same Message-ID: {gone[0]}; the "
                                                 "worker's mail batch or `renewly mail send` sends them")
        assert max(len(line) for line in retried.out.splitlines()) <= 80
        again = json.loads(renewly("outbox", "retry", str(gone[0]), "--json").out)
        assert again == {"retried": [], "already_due": [gone[0]]}
        shown = renewly("outbox", "show", str(gone[0]))
        assert "to try again from" in shown.out and "no such user" in shown.out
        assert json.loads(renewly("outbox", "retry", "--failed", "--json").out) == {"retried": [gone[1]],
                                                                                     "already_due": []}
        assert renewly("outbox", "retry", "--failed").out == "no failed e-mail to send again\n"

        del server.mailbox.refused["gone@buyer.example"]
        assert renewly("mail", "send").out == "2 e-mail(s) delivered\n"
    finally:
        server.stop()
    assert sorted(server.mailbox.message_ids[f"<renewly.outbox.{row_id}@seller.example>"] for row_id in gone) == [1, 1]
    with app.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.actor, audit_log.c.target_id).where(
            audit_log.c.action == "email.retried").order_by(audit_log.c.id)).all() == [
            ("test:cli", str(gone[0])), ("test:cli", str(gone[1]))]


def test_outbox_retry_asks_for_ids_or_failed_and_since_goes_with_failed_each_in_one_line(app, renewly):
    for args, said in [((), "name the e-mails to send again (outbox list --failed), or --failed for all of them"),
                       (("1", "--failed"), "name e-mails or ask for --failed, not both"),
                       (("--since", "2026-01-01"), "--since goes with --failed"),
                       (("--failed", "--since", "2026-13-01"), "malformed --since date '2026-13-01': expected "
                                                               "YYYY-MM-DD"),
                       (("999",), "no outbox row 999 (renewly outbox list --failed)")]:
        refused = renewly("outbox", "retry", *args)
        assert (refused.code, refused.out, refused.err) == (2, "", f"error: {said}\n"), args
