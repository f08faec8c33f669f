"""`renewly mail send`: one pass over every e-mail due, its report, its exit codes."""

from __future__ import annotations

import json

from tests.mail.smtp_server import SmtpServer, mail_settings
from tests.mail.test_delivery import write_emails


def configure(monkeypatch, port: int, **more) -> None:
    for key, value in mail_settings(port, **more).items():
        monkeypatch.setenv(f"RENEWLY_MAIL__{key.upper()}", str(value))


def test_mail_send_delivers_everything_due_and_reports_it(app, renewly, monkeypatch, smtp):
    write_emails(app, 7)
    configure(monkeypatch, smtp.port, slice_size=3)

    sent = renewly("mail", "send", "--json")
    assert sent.code == 0, sent.err
    assert json.loads(sent.out) == {"delivered": 7, "to_retry": 0, "failed": 0, "resent": 0, "last_error": ""}
    assert len(smtp.mailbox.messages) == 7
    again = renewly("mail", "send")
    assert (again.code, again.out) == (0, "0 e-mail(s) delivered\n")


def test_mail_send_without_smtp_is_refused_in_one_line(app, renewly):
    refused = renewly("mail", "send")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == ("error: no SMTP server configured (mail.host): e-mails stay in the outbox "
                           "(renewly outbox show ID)\n")


def test_mail_send_to_a_server_that_is_down_keeps_every_e_mail_and_exits_1(app, renewly, monkeypatch):
    write_emails(app, 2)
    configure(monkeypatch, SmtpServer().port)  # nobody listens there

    down = renewly("mail", "send")
    assert down.code == 1
    [logged] = down.err.splitlines()  # the one line of trouble, for an operator's logs too
    assert "e-mails to try again" in logged and "count=2" in logged
    assert down.out.startswith("0 e-mail(s) delivered, 2 to try again (no connection to 127.0.0.1:")


def test_a_bad_mail_setting_is_one_line_and_exit_2(app, renewly, monkeypatch):
    monkeypatch.setenv("RENEWLY_MAIL__HOST", "smtp.example")
    refused = renewly("mail", "send")
    assert refused.code == 2
    assert refused.err == ("error: configuration: mail: Value error, host is set but not from_address: every "
                           "e-mail needs a sender\n")


def test_ctrl_c_during_mail_send_finishes_the_slice_in_hand_and_exits_130(app, smtp):
    import os
    import signal
    import subprocess
    import time

    from tests.mail.test_delivery import rows
    from tests.processes import RENEWLY

    write_emails(app, 40)
    smtp.mailbox.latency = 0.2  # a slice of 2 on 1 connection: 0.4 s at the server
    variables = {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                 **{f"RENEWLY_MAIL__{key.upper()}": str(value)
                    for key, value in mail_settings(smtp.port, slice_size=2, connections=1).items()}}
    batch = subprocess.Popen([str(RENEWLY), "mail", "send"], env=variables, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not smtp.mailbox.messages:
        assert batch.poll() is None and time.monotonic() < deadline, batch.communicate()
        time.sleep(0.02)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)

    assert batch.returncode == 130, (out, err)
    assert "Traceback" not in err and "stopping after the slice in hand" in err
    delivered = [row for row in rows(app).values() if row["delivered_at"] is not None]
    assert out.splitlines() == [f"{len(delivered)} e-mail(s) delivered",
                                "interrupted: stopped after the slice in hand; `renewly mail send` sends the rest"]
    assert 2 <= len(delivered) < 40 and len(delivered) % 2 == 0  # whole slices: the one in hand, and the next
    assert all(row["claimed_until"] is None for row in rows(app).values())  # nothing left claimed
    assert len(smtp.mailbox.messages) == len(delivered)


def test_starttls_asked_of_a_server_that_does_not_offer_it_is_a_misconfiguration(app, renewly, monkeypatch, smtp):
    write_emails(app, 1)
    configure(monkeypatch, smtp.port, security="starttls")

    refused = renewly("mail", "send")
    assert (refused.code, refused.out) == (2, "")
    [line] = refused.err.splitlines()
    assert line.startswith(f"error: the SMTP server 127.0.0.1:{smtp.port} does not offer what mail.security")


def test_tls_with_a_server_whose_certificate_no_authority_signed_is_refused_in_one_line(app, renewly, monkeypatch):
    import ssl
    from pathlib import Path

    # tests/mail/tls: a self-signed certificate for 127.0.0.1, made for these tests alone.
    folder = Path(__file__).parents[1] / "mail" / "tls"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = SmtpServer(ssl_context=context).start()
    try:
        write_emails(app, 1)
        configure(monkeypatch, server.port, security="tls")
        refused = renewly("mail", "send")
    finally:
        server.stop()
    assert (refused.code, refused.out) == (2, "")
    [line] = refused.err.splitlines()
    assert line.startswith(f"error: TLS with the SMTP server 127.0.0.1:{server.port} failed (mail.security = 'tls'):")
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert server.mailbox.messages == []


def test_mail_send_over_starttls_trusts_the_private_authority_of_mail_ca_file(app, renewly, monkeypatch, tmp_path):
    import ssl

    import trustme

    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "authority.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server = SmtpServer(tls_context=context, require_starttls=True).start()
    try:
        write_emails(app, 2)
        configure(monkeypatch, server.port, security="starttls")
        refused = renewly("mail", "send")  # the system does not know that authority
        monkeypatch.setenv("RENEWLY_MAIL__CA_FILE", str(tmp_path / "authority.pem"))
        sent = renewly("mail", "send")
    finally:
        server.stop()
    assert refused.code == 2 and refused.err.endswith("a private authority's certificate goes in mail.ca_file\n")
    assert (sent.code, sent.out) == (0, "2 e-mail(s) delivered\n")
    assert server.mailbox.tls in (["TLSv1.3"] * 2, ["TLSv1.2"] * 2)
