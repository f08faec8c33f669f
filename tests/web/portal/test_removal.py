"""R4.2 the page a billing e-mail's removal link opens: which address leaves which account's
billing e-mails, removed only at its button (a GET changes nothing: mail scanners follow links)
or at RFC 8058's one-click POST of a mail client (no token, no cookie); then a page saying it is
done; an expired, used or altered link: a page saying so, in the account's language. Followed
from the link of a message really delivered over SMTP."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from renewly.accounts.contacts import request_contact
from renewly.adapters.db.tables import accounts, audit_log, billing_contacts
from renewly.mail.delivery import deliver_due
from renewly.outbox.emails import addressees
from tests.builders import customer
from tests.mail.smtp_server import mail_settings
from tests.web.portal.conftest import Browsers, shown

OWNER, BOOKS = "owner@acme.test", "books@acme.test"


@pytest.fixture
def mailed(databases, db_kind, smtp):
    """Acme (in `locale`) adds books@ as a billing contact; its welcome e-mail is delivered."""
    made = []

    def make(locale: str = "en"):
        app = databases.fresh_app(db_kind, mail=mail_settings(smtp.port))
        account_id = customer(app, locale=locale)
        request_contact(app, account_id, email=BOOKS, requested_by=OWNER)
        assert deliver_due(app, app.clock.now()).delivered == 1
        [message] = [m for m in smtp.mailbox.messages if m["To"] == BOOKS]
        browsers = Browsers(app)
        made.append(browsers)
        return app, account_id, message, browsers

    yield make
    for browsers in made:
        for client in browsers.opened:
            client.close()


def link_of(message) -> str:
    """The message's List-Unsubscribe address, which its text shows too."""
    url = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.get_body(("plain",)).get_content()
    assert url.startswith("https://billing.renewly.example/portal/billing-contacts/remove/")
    return urlsplit(url).path


def contacts_of(app, account_id: int) -> list[str]:
    with app.engine.connect() as conn:
        return addressees(conn, [account_id])[account_id].emails


def test_r4_2_the_e_mail_s_link_shows_who_leaves_what_and_removes_only_at_the_button(mailed):
    app, account_id, message, browsers = mailed()
    path = link_of(message)
    browser = browsers.new()

    # A mail scanner, then the contact, open the link: nothing is removed by looking.
    for _ in range(2):
        page = shown(browser.get(path), 200, 'data-removal="confirm"')
        assert "books@acme.test will no longer receive the billing e-mails of Acme" in page
    assert contacts_of(app, account_id) == [OWNER, BOOKS]

    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    done = browser.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert "books@acme.test no longer receives the billing e-mails of Acme." in shown(done, 200, 'data-removal="done"')
    assert contacts_of(app, account_id) == [OWNER]
    with app.engine.connect() as conn:
        [audited] = conn.execute(select(audit_log.c.actor, audit_log.c.details).where(
            audit_log.c.action == "billing_contact.removed")).all()
    assert audited.actor == BOOKS and audited.details["by"] == "removal link"

    # Used once: the link now says so, and the button is gone.
    again = shown(browser.get(path), 409, 'data-problem="removal_link_used"')
    assert "This link was already used" in again and "csrf_token" not in again.split("<main>")[1]


def test_r4_2_the_mail_client_s_one_click_post_removes_without_page_cookie_or_token(mailed):
    app, account_id, message, browsers = mailed()
    path = link_of(message)
    mail_client = browsers.new()

    # Only RFC 8058's body is taken without a token: any other form there is refused, nothing removed.
    shown(mail_client.post(path, data={"List-Unsubscribe": "Yes"}), 403, 'data-problem="csrf"')
    shown(mail_client.post(path, data={}), 403, 'data-problem="csrf"')
    assert contacts_of(app, account_id) == [OWNER, BOOKS]

    answer = mail_client.post(path, data={"List-Unsubscribe": "One-Click"})
    shown(answer, 200, 'data-removal="done"')
    assert "renewly_portal" not in answer.cookies
    assert contacts_of(app, account_id) == [OWNER]
    shown(mail_client.post(path, data={"List-Unsubscribe": "One-Click"}), 409, 'data-problem="removal_link_used"')


def test_r4_2_the_one_click_post_may_come_as_multipart_form_data(mailed):
    app, account_id, message, browsers = mailed()
    answer = browsers.new().post(link_of(message), files={"List-Unsubscribe": (None, "One-Click")})
    shown(answer, 200, 'data-removal="done"')
    assert contacts_of(app, account_id) == [OWNER]


def test_r4_2_a_token_sent_to_the_removal_page_is_checked_as_on_every_form(mailed):
    app, account_id, message, browsers = mailed()
    path = link_of(message)
    browser = browsers.new()
    browser.get(path)
    shown(browser.post(path, data={"csrf_token": "forged"}), 403, 'data-problem="csrf"')
    assert contacts_of(app, account_id) == [OWNER, BOOKS]


def test_r4_2_an_expired_link_says_so_in_the_account_s_language_and_removes_nothing(mailed):
    app, account_id, message, browsers = mailed(locale="fr")
    path = link_of(message)
    app.test_clock.set(app.clock.now() + timedelta(days=app.settings.mail.removal_link_days, seconds=1))
    browser = browsers.new()
    page = shown(browser.get(path), 410, 'data-problem="removal_link_expired"')
    assert '<html lang="fr">' in page and "Ce lien a expiré" in page
    shown(browser.post(path, data={"List-Unsubscribe": "One-Click"}), 410, 'data-problem="removal_link_expired"')
    assert contacts_of(app, account_id) == [OWNER, BOOKS]


def test_r4_2_the_pages_are_in_the_account_s_language(mailed):
    app, account_id, message, browsers = mailed(locale="fr")
    path = link_of(message)
    browser = browsers.new()
    page = shown(browser.get(path), 200, '<html lang="fr">')
    assert "books@acme.test ne recevra plus les e-mails de facturation de Acme" in page
    done = browser.post(path, data={"List-Unsubscribe": "One-Click"})
    assert "books@acme.test ne reçoit plus les e-mails de facturation de Acme." in shown(done, 200, 'lang="fr"')


def test_r4_2_an_altered_link_says_so_in_the_browser_s_language_and_shows_no_account(mailed):
    app, account_id, message, browsers = mailed()
    path = link_of(message)
    altered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    browser = browsers.new()
    page = shown(browser.get(altered, headers={"Accept-Language": "fr-FR,fr;q=0.9"}), 404,
                 'data-problem="removal_link_invalid"')
    assert "Ce lien n'est pas valide" in unescape(page) and "Acme" not in page and BOOKS not in page
    shown(browser.post(altered, data={"List-Unsubscribe": "One-Click"}), 404, 'data-problem="removal_link_invalid"')
    with app.engine.connect() as conn:
        statuses = conn.execute(select(billing_contacts.c.status).where(billing_contacts.c.email == BOOKS)).scalars()
        assert list(statuses) == ["active"]


def test_r4_2_a_link_refused_by_another_rule_says_why_in_the_account_s_language(mailed):
    app, account_id, message, browsers = mailed(locale="fr")
    path = link_of(message)
    with app.engine.begin() as conn:  # deleted (R10.1) after the e-mail went out, its contacts still listed
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(status="deleted"))
    page = unescape(shown(browsers.new().get(path), 403, 'data-problem="removal_refused"'))
    assert '<html lang="fr">' in page and "Ce compte a été supprimé : il ne peut plus être modifié." in page
    assert "was deleted" not in page
