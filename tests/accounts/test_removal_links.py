"""R4.2 the removal link of a billing e-mail: it works once, until it expires (on the injected
clock), an altered one is refused, and it removes its contact from its account and nothing else."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from renewly.accounts.contacts import request_contact, unsubscribe_contact
from renewly.accounts.removal_links import TEST_CLOCK_KEY, RemovalLinks
from renewly.adapters.db.tables import audit_log, billing_contacts, outbox
from renewly.config.settings import load_settings
from renewly.mail.letters import letters_of
from renewly.outbox.emails import addressees
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound
from tests.builders import customer, database_rows

OWNER = "owner@acme.test"
BOOKS = "books@acme.test"
CFO = "cfo@acme.test"


def contact_id(app, account_id: int, email: str) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(billing_contacts.c.id).where(
            billing_contacts.c.account_id == account_id, billing_contacts.c.email == email,
            billing_contacts.c.status == "active")).scalar_one()


def link_for(app, account_id: int, email: str) -> str:
    """The link of the e-mail written now to `email` (as mail/letters.py puts it in the message)."""
    return RemovalLinks.of(app.settings).url(account_id, contact_id(app, account_id, email), app.clock.now())


def recipients(app, account_id: int) -> list[str]:
    with app.engine.connect() as conn:
        return addressees(conn, [account_id])[account_id].emails


@pytest.fixture
def acme(app) -> int:
    account_id = customer(app)
    request_contact(app, account_id, email=BOOKS, requested_by=OWNER)
    request_contact(app, account_id, email=CFO, requested_by=OWNER)
    return account_id


def test_r4_2_a_link_removes_its_contact_with_an_audit_row_and_an_event(app, acme):
    link = link_for(app, acme, BOOKS)

    assert unsubscribe_contact(app, link) == (acme, BOOKS)

    assert recipients(app, acme) == [OWNER, CFO]
    with app.engine.connect() as conn:
        [audited] = conn.execute(select(audit_log).where(audit_log.c.action == "billing_contact.removed")).all()
        events = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "billing_contact.removed")).scalars()
        assert list(events) == [{"account_id": acme, "email": BOOKS}]
    assert (audited.actor, audited.details) == (BOOKS, {"email": BOOKS, "was": "active", "by": "removal link"})


def test_r4_2_a_link_works_once(app, acme):
    link = link_for(app, acme, BOOKS)
    unsubscribe_contact(app, link)
    before = database_rows(app)

    with pytest.raises(Conflict, match=f"used already: {BOOKS} is no longer a billing contact of account {acme}"):
        unsubscribe_contact(app, link)
    assert database_rows(app) == before


def test_r4_2_an_old_link_does_not_remove_the_same_address_added_again(app, acme):
    link = link_for(app, acme, BOOKS)
    unsubscribe_contact(app, link)
    request_contact(app, acme, email=BOOKS, requested_by=OWNER)
    before = database_rows(app)

    with pytest.raises(Conflict):
        unsubscribe_contact(app, link)
    assert database_rows(app) == before and recipients(app, acme) == [OWNER, CFO, BOOKS]


def test_r4_2_a_link_expires_on_the_injected_clock(app, acme):
    link = link_for(app, acme, BOOKS)
    days = app.settings.mail.removal_link_days
    app.test_clock.set(app.clock.now() + timedelta(days=days, seconds=1))
    before = database_rows(app)

    with pytest.raises(InvalidInput, match="this removal link expired on 2026-03-02: nothing changed"):
        unsubscribe_contact(app, link)
    assert database_rows(app) == before


def test_r4_2_a_link_works_to_its_last_second(app, acme):
    link = link_for(app, acme, BOOKS)
    app.test_clock.set(app.clock.now() + timedelta(days=app.settings.mail.removal_link_days))
    assert unsubscribe_contact(app, link) == (acme, BOOKS)


@pytest.mark.parametrize("alter", [
    lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
    lambda token: token[:-12],  # cut short
    lambda token: "x" + token,  # the payload
    lambda token: "",
])
def test_r4_2_an_altered_link_is_refused_and_changes_nothing(app, acme, alter):
    token = link_for(app, acme, BOOKS).rpartition("/")[2]
    before = database_rows(app)

    with pytest.raises(InvalidInput, match=r"^this removal link is not valid \(altered or cut short\): nothing "):
        unsubscribe_contact(app, alter(token))
    assert database_rows(app) == before


def test_r4_2_a_link_signed_with_another_key_is_refused(app, acme):
    other = RemovalLinks("another key, 32 characters or more", "https://billing.renewly.example",
                         timedelta(days=60))
    with pytest.raises(InvalidInput, match="not valid"):
        unsubscribe_contact(app, other.token(acme, contact_id(app, acme, BOOKS), app.clock.now()))
    assert recipients(app, acme) == [OWNER, BOOKS, CFO]


def test_r4_2_a_link_removes_nothing_else_not_even_the_same_address_elsewhere(app, acme):
    other = customer(app, name="Globex", owner="owner@globex.test")
    request_contact(app, other, email=BOOKS, requested_by="owner@globex.test")

    unsubscribe_contact(app, link_for(app, acme, BOOKS))

    assert recipients(app, acme) == [OWNER, CFO]
    assert recipients(app, other) == ["owner@globex.test", BOOKS]


def test_r4_2_a_link_naming_another_account_s_contact_is_refused(app, acme):
    """The token binds the account and the contact's row: even signed with the key, a pairing
    of one account with another's contact names no contact."""
    other = customer(app, name="Globex", owner="owner@globex.test")
    links = RemovalLinks.of(app.settings)
    with pytest.raises(NotFound, match="names no billing contact any more: nothing changed"):
        unsubscribe_contact(app, links.token(other, contact_id(app, acme, BOOKS), app.clock.now()))
    assert recipients(app, acme) == [OWNER, BOOKS, CFO]


def test_r4_2_the_owner_is_never_removed_by_a_link(app, acme):
    """A contact who became the owner since keeps receiving: the owner cannot be removed."""
    from renewly.accounts.accounts import add_member, transfer_ownership
    link = link_for(app, acme, BOOKS)
    add_member(app, acme, email=BOOKS, role="admin", actor="test:operator")
    transfer_ownership(app, acme, to_email=BOOKS, reason="the founder left", actor="support:alice")
    with pytest.raises(NotAllowed, match="owns account"):
        unsubscribe_contact(app, link)


def test_r4_2_on_the_system_clock_links_need_a_secret_key_and_a_public_url(tmp_path):
    settings = load_settings(config_file=None, database_url=f"sqlite:///{tmp_path}/x.db", clock="system")
    with pytest.raises(InvalidInput, match="^secret_key and public_url not set: billing e-mails to contacts"):
        RemovalLinks.of(settings)
    with pytest.raises(InvalidInput, match="32 characters or more"):
        load_settings(config_file=None, secret_key="short")
    with pytest.raises(InvalidInput, match="https://"):
        load_settings(config_file=None, public_url="http://billing.example.com")
    configured = settings.model_copy(update={"secret_key": SecretStr("k" * 32),
                                             "public_url": "https://billing.example.com"})
    assert RemovalLinks.of(configured).url(1, 2, settings_now()).startswith(
        "https://billing.example.com/portal/billing-contacts/remove/")
    assert "k" * 32 not in repr(configured)
    known = configured.model_copy(update={"secret_key": SecretStr(TEST_CLOCK_KEY)})
    with pytest.raises(InvalidInput, match="^secret_key is the test clock's, which everyone knows"):
        RemovalLinks.of(known)


def settings_now():
    from tests.conftest import START
    return START


def test_r4_2_the_owner_s_message_has_no_link_and_each_contact_s_its_own(app, acme):
    with app.engine.connect() as conn:
        to = addressees(conn, [acme])[acme]
    from renewly.outbox import writer
    from renewly.outbox.rendering import mail_templates
    page = "<html><body><p>Thank you.</p>\n</body></html>"
    row = writer.email(app.clock.now(), acme, kind="payment_confirmed", locale="en", recipients=to.emails,
                       subject="Payment received", body="Thank you.\n", html=page, contacts=to.contacts,
                       removal_footer=mail_templates().removal_footer("en")._asdict())
    letters = letters_of(SimpleNamespace(id=7, **row._asdict()), app.settings.mail, app.settings.seller,
                         links=RemovalLinks.of(app.settings))
    assert [letter.recipients for letter in letters] == [(OWNER,), (BOOKS,), (CFO,)]
    assert letters[0].headers == () and letters[0].text == "Thank you.\n" and letters[0].html == page
    assert [letter.message_id.split("@")[0] for letter in letters] == [
        "<renewly.outbox.7", "<renewly.outbox.7.1", "<renewly.outbox.7.2"]
    for letter in letters[1:]:
        [(name, value), post] = letter.headers
        assert name == "List-Unsubscribe" and value.strip("<>") in letter.text
        url = value.strip("<>")
        assert letter.text == ("Thank you.\n\n-- \nYou receive this e-mail as a billing contact. To stop receiving "
                               f"this account's billing e-mails: {url}\n")
        # The HTML footer (mail/layout.html) at the end of the body, the contact's own link in it.
        assert letter.html.endswith(f'<a href="{url}">{url}</a></p>\n</body></html>')
        assert "{removal_url}" not in letter.html + letter.text
        assert post == ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


def test_r4_2_a_row_written_before_rows_kept_their_footer_gets_the_shipped_one_in_its_language(app, acme):
    """An outbox row of the release before the templates: contacts, no `removal_footer`."""
    with app.engine.connect() as conn:
        to = addressees(conn, [acme])[acme]
    payload = {"kind": "payment_confirmed", "locale": "fr", "recipients": to.emails, "subject": "Paiement reçu",
               "body": "Merci.\n", "contacts": to.contacts}
    row = SimpleNamespace(id=8, created_at=app.clock.now(), topic="email", account_id=acme, payload=payload)
    letters = letters_of(row, app.settings.mail, app.settings.seller, links=RemovalLinks.of(app.settings))
    for letter in letters[1:]:
        url = dict(letter.headers)["List-Unsubscribe"].strip("<>")
        assert letter.text.endswith(f"-- \nVous recevez cet e-mail en tant que contact de facturation. Pour ne plus "
                                    f"recevoir les e-mails de facturation de ce compte : {url}\n")
