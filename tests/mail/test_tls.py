"""E-mails leave over TLS (docs/mail.md): STARTTLS (port 587) or implicit TLS (port 465), to a
real SMTP server on loopback (aiosmtpd) whose certificate a test authority issued (trustme). The
server's certificate is verified by default, against the system's authorities or those of
`mail.ca_file`: an untrusted certificate, a certificate for another name, or a server that
offers no STARTTLS stops the batch with one clear line, every e-mail still due and none sent,
in plain text or otherwise."""

from __future__ import annotations

import ssl

import pytest
import trustme

from renewly.adapters.mail.port import MailMisconfigured
from renewly.config.settings import load_settings
from renewly.mail.delivery import deliver_due
from renewly.shared.errors import InvalidInput
from tests.mail.smtp_server import SmtpServer, mail_settings
from tests.mail.test_delivery import rows, write_emails


@pytest.fixture
def authority() -> trustme.CA:
    """A certificate authority made for the test, trusted by nobody until a test says so."""
    return trustme.CA()


@pytest.fixture
def ca_file(authority, tmp_path):
    path = tmp_path / "authority.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


def server_context(authority: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*(names or ("127.0.0.1",))).configure_cert(context)
    return context


def tls_server(security: str, context: ssl.SSLContext) -> SmtpServer:
    """aiosmtpd with TLS from the first byte, or offering STARTTLS and refusing mail before it."""
    if security == "tls":
        return SmtpServer(ssl_context=context).start()
    return SmtpServer(tls_context=context, require_starttls=True).start()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_e_mails_are_delivered_over_tls_to_a_server_whose_authority_is_in_mail_ca_file(
        databases, db_kind, authority, ca_file, security):
    server = tls_server(security, server_context(authority))
    try:
        app = databases.fresh_app(db_kind, mail=mail_settings(server.port, security=security, ca_file=str(ca_file)))
        ids = write_emails(app, 3)
        report = deliver_due(app, app.clock.now())
    finally:
        server.stop()
    assert (report.delivered, report.to_retry, report.failed) == (3, 0, 0)
    assert sorted(server.mailbox.message_ids) == sorted(f"<renewly.outbox.{row_id}@seller.example>" for row_id in ids)
    assert set(server.mailbox.tls) <= {"TLSv1.2", "TLSv1.3"} and len(server.mailbox.tls) == 3  # none in plain text
    assert all(row["delivered_at"] is not None for row in rows(app).values())


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_no_trusted_authority_signed_stops_the_batch_and_nothing_is_sent(
        databases, db_kind, authority, security):
    server = tls_server(security, server_context(authority))  # the test's authority: not the system's
    try:
        app = databases.fresh_app(db_kind, mail=mail_settings(server.port, security=security))
        write_emails(app, 2)
        with pytest.raises(MailMisconfigured) as refused:
            deliver_due(app, app.clock.now())
    finally:
        server.stop()
    said = refused.value.message
    assert said.startswith(f"TLS with the SMTP server 127.0.0.1:{server.port} failed (mail.security = '{security}'):")
    assert "CERTIFICATE_VERIFY_FAILED" in said and said.endswith("a private authority's certificate goes in "
                                                                 "mail.ca_file")
    assert "\n" not in said
    assert server.mailbox.messages == []
    # Every e-mail still due, untried: sent once the settings are mended.
    assert {(row["attempts"], row["delivered_at"], row["failed_at"], row["claimed_until"])
            for row in rows(app).values()} == {(0, None, None, None)}


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_of_the_trusted_authority_for_another_name_is_refused(
        databases, db_kind, authority, ca_file, security):
    server = tls_server(security, server_context(authority, "smtp.elsewhere.example"))
    try:
        app = databases.fresh_app(db_kind, mail=mail_settings(server.port, security=security, ca_file=str(ca_file)))
        write_emails(app, 1)
        with pytest.raises(MailMisconfigured, match="CERTIFICATE_VERIFY_FAILED.*(Hostname|IP address) mismatch"):
            deliver_due(app, app.clock.now())
    finally:
        server.stop()
    assert server.mailbox.messages == []


def test_a_server_that_offers_no_starttls_is_refused_never_sent_to_in_plain_text(databases, db_kind, smtp):
    # `smtp` takes plain-text mail gladly: a fallback would deliver it.
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, security="starttls"))
    write_emails(app, 2)

    with pytest.raises(MailMisconfigured) as refused:
        deliver_due(app, app.clock.now())

    assert refused.value.message.startswith(f"the SMTP server 127.0.0.1:{smtp.port} does not offer what "
                                            "mail.security or mail.username needs")
    assert smtp.mailbox.messages == []
    assert {(row["attempts"], row["delivered_at"]) for row in rows(app).values()} == {(0, None)}


def test_tls_asked_of_a_plain_text_server_is_refused_and_nothing_is_sent(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port, security="tls", timeout_seconds=10))
    write_emails(app, 1)

    with pytest.raises(MailMisconfigured, match="TLS with the SMTP server .* failed"):
        deliver_due(app, app.clock.now())
    assert smtp.mailbox.messages == []


def test_mail_ca_file_is_read_at_the_door(tmp_path, ca_file):
    def settings(**mail):
        return load_settings(config_file=None, mail={"host": "smtp.example", "from_address": "b@seller.example",
                                                     **mail})

    assert settings(ca_file=str(ca_file)).mail.ca_file == ca_file.resolve()
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    (tmp_path / "binary.pem").write_bytes(bytes(range(256)))
    for path, said in [(tmp_path / "missing.pem", "is not a file"), (tmp_path, "is not a file"),
                       (tmp_path / "notes.txt", "holds no certificate authority in PEM"),
                       (tmp_path / "binary.pem", "holds no certificate authority in PEM")]:
        with pytest.raises(InvalidInput, match=f"ca_file {path} {said}") as refused:
            settings(ca_file=str(path))
        assert "\n" not in refused.value.message
    with pytest.raises(InvalidInput, match="ca_file is set but security is 'none'"):
        settings(ca_file=str(ca_file), security="none")
