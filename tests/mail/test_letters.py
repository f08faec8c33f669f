"""Invoice e-mails with their PDF and billing contacts' removal links, delivered to a real SMTP
server on loopback (aiosmtpd): R4.3 every billing recipient gets the invoice at issue with its
PDF attached, R2.3 support's resend attaches the month's PDFs, R4.2 each contact who is not the
owner gets a message of its own with a signed removal link and RFC 8058 headers, the owner's
message has none."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.contacts import remove_contact, request_contact, unsubscribe_contact
from renewly.adapters.db.tables import invoice_documents, invoices, outbox
from renewly.billing.invoices import resend_invoices_of_month
from renewly.billing.renewals import renew_due
from renewly.mail.delivery import deliver_due
from renewly.outbox.emails import addressees
from renewly.shared.errors import Conflict
from tests.builders import OPERATOR, subscribed
from tests.conftest import START
from tests.mail.smtp_server import mail_settings

OWNER = "owner@acme.test"
BOOKS = "books@acme.test"
CFO = "cfo@acme.test"
LINK = "https://billing.renewly.example/portal/billing-contacts/remove/"


@pytest.fixture
def acme(databases, db_kind, smtp):
    """Acme (French) with its owner and two billing contacts, its first invoice e-mailed already."""
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    account_id, _ = subscribed(app, locale="fr")
    deliver_due(app, app.clock.now())
    smtp.mailbox.messages.clear()
    request_contact(app, account_id, email=BOOKS, requested_by=OWNER)
    request_contact(app, account_id, email=CFO, requested_by=OWNER)
    deliver_due(app, app.clock.now())  # their welcome e-mails
    smtp.mailbox.messages.clear()
    return app, account_id


def by_recipient(smtp) -> dict[str, object]:
    found = {}
    for message in smtp.mailbox.messages:
        [recipient] = [address.addr_spec for address in message["To"].addresses]
        found[recipient] = message
    return found


def pdf_of(message) -> tuple[str, bytes]:
    [attached] = list(message.iter_attachments())
    return attached.get_filename(), attached.get_content()


def stored_pdf(app, number: str) -> bytes:
    with app.engine.connect() as conn:
        return conn.execute(select(invoice_documents.c.content).join(
            invoices, invoices.c.id == invoice_documents.c.invoice_id).where(invoices.c.number == number)).scalar_one()


def test_r4_3_the_first_invoice_is_e_mailed_at_issue_with_its_pdf_to_the_owner(databases, db_kind, smtp):
    app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
    subscribed(app)

    report = deliver_due(app, app.clock.now())

    assert report.delivered == 1
    [message] = smtp.mailbox.messages
    assert message["To"] == OWNER and message["Subject"] == "Invoice 2026-000001 from Renewly Demo SAS"
    assert "List-Unsubscribe" not in message
    filename, pdf = pdf_of(message)
    assert (filename, pdf[:5]) == ("invoice-2026-000001.pdf", b"%PDF-")
    assert pdf == stored_pdf(app, "2026-000001")  # rendered at the first need, stored, the same bytes


def test_r4_3_a_renewal_invoice_goes_to_every_billing_recipient_each_with_its_pdf(acme, smtp):
    app, account_id = acme
    app.test_clock.set(START + timedelta(days=31))
    assert renew_due(app, app.clock.now()).invoices_issued == 1

    report = deliver_due(app, app.clock.now())

    assert report.delivered == 1  # one outbox row, sent as one message per contact
    sent = by_recipient(smtp)
    assert sorted(sent) == sorted([OWNER, BOOKS, CFO])
    pdf = stored_pdf(app, "2026-000002")
    for message in sent.values():
        assert message["Subject"] == "Facture 2026-000002 de Renewly Demo SAS"
        assert "ci-joint la facture 2026-000002" in message.get_body(("plain",)).get_content()
        assert pdf_of(message) == ("facture-2026-000002.pdf", pdf)
    assert len({message["Message-ID"] for message in sent.values()}) == 3


def test_r4_2_contacts_messages_carry_list_unsubscribe_and_the_owner_s_does_not(acme, smtp):
    app, account_id = acme
    resend_invoices_of_month(app, account_id, year=2026, month=1, reason="perdue", actor=OPERATOR)
    deliver_due(app, app.clock.now())

    sent = by_recipient(smtp)
    owner = sent[OWNER]
    assert "List-Unsubscribe" not in owner and "List-Unsubscribe-Post" not in owner
    assert LINK not in owner.get_body(("plain",)).get_content()
    assert LINK not in owner.get_body(("html",)).get_content()
    for contact in (BOOKS, CFO):
        message = sent[contact]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = str(message["List-Unsubscribe"]).strip("<>")
        assert link.startswith(LINK)
        text = message.get_body(("plain",)).get_content()
        assert link in text and "contact de facturation" in text
        # The footer of mail/layout.html, in French, the contact's own link in it, inside the body.
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert f'ce compte : <a href="{link}">{link}</a></p>\n</body>' in html
        assert "{removal_url}" not in text + html
    assert str(sent[BOOKS]["List-Unsubscribe"]) != str(sent[CFO]["List-Unsubscribe"])


def test_r2_3_the_resend_attaches_each_of_the_month_s_pdfs(acme, smtp):
    app, account_id = acme
    app.test_clock.set(START + timedelta(days=15))
    # A second invoice in January: the month's resend sends both, each with its own PDF.
    with app.engine.connect() as conn:
        before = conn.execute(select(outbox.c.id).order_by(outbox.c.id.desc())).scalar()
    from renewly.billing.subscriptions import create_subscription
    create_subscription(app, account_id, plan_code="team", seats=1, actor=OPERATOR)
    with app.engine.begin() as conn:  # this test is about the resend: the issue e-mail is delivered already
        conn.execute(outbox.update().where(outbox.c.id > before).values(delivered_at=app.clock.now()))

    assert resend_invoices_of_month(app, account_id, year=2026, month=1, reason="perdues",
                                    actor=OPERATOR) == ["2026-000001", "2026-000002"]
    deliver_due(app, app.clock.now())

    owner = [message for message in smtp.mailbox.messages if message["To"] == OWNER]
    assert [pdf_of(message) for message in owner] == [
        ("facture-2026-000001.pdf", stored_pdf(app, "2026-000001")),
        ("facture-2026-000002.pdf", stored_pdf(app, "2026-000002"))]
    assert all("Envoyée de nouveau à votre demande (perdues)" in message.get_body(("plain",)).get_content()
               for message in owner)
    assert len(smtp.mailbox.messages) == 6  # 2 invoices x (owner, 2 contacts)


def test_r4_2_the_link_of_a_delivered_e_mail_removes_its_contact_once(acme, smtp):
    app, account_id = acme
    resend_invoices_of_month(app, account_id, year=2026, month=1, reason="perdue", actor=OPERATOR)
    deliver_due(app, app.clock.now())
    link = str(by_recipient(smtp)[BOOKS]["List-Unsubscribe"]).strip("<>")

    assert unsubscribe_contact(app, link) == (account_id, BOOKS)

    with app.engine.connect() as conn:
        assert addressees(conn, [account_id])[account_id].emails == [OWNER, CFO]
    with pytest.raises(Conflict, match="used already"):
        unsubscribe_contact(app, link)


def test_r4_2_a_contact_removed_before_delivery_still_has_the_message_of_its_row_but_a_dead_link(acme, smtp):
    app, account_id = acme
    resend_invoices_of_month(app, account_id, year=2026, month=1, reason="perdue", actor=OPERATOR)
    remove_contact(app, account_id, email=BOOKS, acting_email=OWNER)
    deliver_due(app, app.clock.now())

    # BOOKS also gets the notice of its removal (contact_removed), without a link: it is no contact.
    [invoice_message] = [message for message in smtp.mailbox.messages
                         if BOOKS in str(message["To"]) and message["List-Unsubscribe"]]
    link = str(invoice_message["List-Unsubscribe"]).strip("<>")
    with pytest.raises(Conflict, match="no longer a billing contact"):
        unsubscribe_contact(app, link)


def test_a_row_s_messages_are_the_same_bytes_at_every_send(acme, smtp):
    """A resend after a crash is recognisable: the link is signed at the row's instant."""
    from types import SimpleNamespace

    from renewly.accounts.removal_links import RemovalLinks
    from renewly.adapters.mail.message import as_bytes
    from renewly.billing.documents import documents_of
    from renewly.mail.letters import attached_invoices, letters_of
    app, account_id = acme
    resend_invoices_of_month(app, account_id, year=2026, month=1, reason="perdue", actor=OPERATOR)
    with app.engine.connect() as conn:
        row = conn.execute(select(outbox).order_by(outbox.c.id.desc())).first()

    def build():
        app.test_clock.set(app.clock.now() + timedelta(hours=1))
        return [as_bytes(letter) for letter in letters_of(
            SimpleNamespace(**row._mapping), app.settings.mail, app.settings.seller,
            links=RemovalLinks.of(app.settings), documents=documents_of(app, attached_invoices(row.payload)))]

    first, again = build(), build()
    assert first == again and len(first) == 3
    assert hashlib.sha256(first[0]).digest() != hashlib.sha256(first[1]).digest()
