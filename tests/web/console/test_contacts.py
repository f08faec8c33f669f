"""Billing contacts in the console (R4.1, R4.2; the seed: a non-owner e-mails support with the
owner in CC, and one e-mails support to leave the list): every staff member reads an account's
owner, contacts and waiting requests; support alone records the owner's consent it was given, or
removes a contact at its request, with the evidence, audited under its own name. Finance is
refused; a refusal is said on the account's page in the reader's language, what was typed kept."""

from __future__ import annotations

from html import unescape

from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import approve_contact, list_contacts, request_contact
from renewly.adapters.db.tables import audit_log, outbox
from tests.builders import OPERATOR, customer, database_rows
from tests.web.console.conftest import FINANCE, SUPPORT, csrf_token, shown, submit

OWNER, ADMIN, ACCOUNTANT = "owner@acme.test", "admin@acme.test", "books@accountants.test"


def acme(app, locale: str = "en") -> int:
    account_id = customer(app, locale=locale)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    return account_id


def contacts_of(app, account_id: int) -> list[tuple[str, str]]:
    return [(row["email"], "owner" if row["owner"] else row["status"]) for row in list_contacts(app, account_id)]


def audited(app, action: str) -> list[tuple]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(audit_log.c.actor, audit_log.c.reason)
                                                   .where(audit_log.c.action == action).order_by(audit_log.c.id))]


def emailed(app, kind: str) -> list[list[str]]:
    with app.engine.connect() as conn:
        return [payload["recipients"] for payload in conn.execute(select(outbox.c.payload).where(
            outbox.c.topic == "email").order_by(outbox.c.id)).scalars() if payload["kind"] == kind]


def test_r4_every_staff_member_reads_the_owner_the_contacts_and_the_waiting_requests(app, staff, browsers):
    account_id = acme(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    request_contact(app, account_id, email="later@acme.test", requested_by=ADMIN)
    for who in (SUPPORT, FINANCE):
        page = shown(browsers.signed_in(who).get(f"/console/accounts/{account_id}"), 200, "Billing contacts")
        assert f'<li data-contact-status="owner">{OWNER}' in page
        assert f'<li data-contact-status="active">{ACCOUNTANT}' in page
        assert '<li data-contact-status="requested">later@acme.test' in page and f"asked by {ADMIN}" in page
        # Finance reads; the forms that act are support's only.
        has_forms = 'data-action="contacts-consent"' in page and 'data-action="contacts-remove"' in page
        assert has_forms is (who == SUPPORT)


def test_r4_1_support_records_the_owner_s_consent_with_its_evidence(app, staff, browsers):
    account_id = acme(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    done = submit(browser, page, page + "/contacts/consent", {"email": ACCOUNTANT, "evidence": "ticket 4821"})
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=consent_recorded")
    shown(browser.get(done.headers["location"]), 200, 'data-done="consent_recorded"')
    assert contacts_of(app, account_id) == [(OWNER, "owner"), (ACCOUNTANT, "active")]
    actor = f"console:staff-{staff[SUPPORT]}"
    assert audited(app, "billing_contact.consent_recorded") == [(actor, "ticket 4821")]
    assert emailed(app, "contact_added") == [[ACCOUNTANT]]
    assert emailed(app, "contact_consent_recorded") == [[OWNER]]
    # The address asked again: refused by the rule, said on the page, what was typed kept.
    again = shown(submit(browser, page, page + "/contacts/consent", {"email": ACCOUNTANT, "evidence": "again"}),
                  409, 'data-error="consent_recorded"')
    assert f"{ACCOUNTANT} already receives this account&#39;s billing e-mails." in again
    assert 'value="again"' in again


def test_r4_1_a_consent_without_evidence_or_for_the_owner_is_refused_and_changes_nothing(app, staff, browsers):
    account_id = acme(app)
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    before = database_rows(app)
    shown(submit(browser, page, page + "/contacts/consent", {"email": ACCOUNTANT, "evidence": " "}), 400,
          "Say where it was asked (the e-mail, the ticket), for the audit log.")
    shown(submit(browser, page, page + "/contacts/consent", {"email": OWNER, "evidence": "ticket"}), 409,
          f"{OWNER} owns this account")
    assert database_rows(app) == before


def test_r4_2_support_removes_a_contact_at_its_request_and_never_the_owner(app, staff, browsers):
    account_id = acme(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=OWNER)  # the owner's own: active at once
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    shown(submit(browser, page, page + "/contacts/remove", {"email": OWNER, "evidence": "ticket 4822"}), 403,
          'data-error="contact_removed"')
    done = submit(browser, page, page + "/contacts/remove", {"email": ACCOUNTANT, "evidence": "ticket 4822"})
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=contact_removed")
    assert contacts_of(app, account_id) == [(OWNER, "owner")]
    assert audited(app, "billing_contact.removed") == [(f"console:staff-{staff[SUPPORT]}", "ticket 4822")]
    assert emailed(app, "contact_removed") == [[ACCOUNTANT]]


def test_finance_cannot_record_a_consent_nor_remove_a_contact(app, staff, browsers):
    account_id = acme(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=OWNER)
    finance = browsers.signed_in(FINANCE)
    page = f"/console/accounts/{account_id}"
    before = database_rows(app)
    for form, fields in (("/contacts/consent", {"email": "new@acme.test", "evidence": "ticket"}),
                         ("/contacts/remove", {"email": ACCOUNTANT, "evidence": "ticket"})):
        shown(submit(finance, page, page + form, fields), 403, 'data-problem="read_only"')
    assert database_rows(app) == before


def test_the_contact_forms_without_their_csrf_token_are_refused(app, staff, browsers):
    account_id = acme(app)
    browser = browsers.signed_in(SUPPORT)
    before = database_rows(app)
    for form in ("consent", "remove"):
        url = f"/console/accounts/{account_id}/contacts/{form}"
        shown(browser.post(url, data={"email": ACCOUNTANT, "evidence": "ticket"}), 403, 'data-problem="csrf"')
        shown(browser.post(url, data={"email": ACCOUNTANT, "evidence": "ticket", "csrf_token": csrf_token(
            browsers.new())}), 403, 'data-problem="csrf"')
    assert database_rows(app) == before


def test_r12_1_the_billing_contacts_and_their_refusals_read_in_french(app, staff, browsers):
    account_id = acme(app)
    request_contact(app, account_id, email="later@acme.test", requested_by=ADMIN)
    browser = browsers.signed_in(SUPPORT)
    browser.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    page = f"/console/accounts/{account_id}"
    text = unescape(shown(browser.get(page), 200, "Contacts de facturation"))
    assert "Enregistrer l'accord du propriétaire" in text and "Retirer à la demande du contact" in text
    assert f"demandé par {ADMIN}, en attente de l'accord du propriétaire" in text
    refused = unescape(shown(submit(browser, page, page + "/contacts/consent", {"email": ACCOUNTANT, "evidence": ""}),
                             400, 'data-error="consent_recorded"'))
    assert "Indiquez où cela a été demandé (l'e-mail, le ticket), pour le journal d'audit." in refused
    assert "needs its evidence" not in refused
    refused = unescape(shown(submit(browser, page, page + "/contacts/remove", {"email": "x@acme.test",
                                                                              "evidence": "ticket"}), 404,
                             'data-error="contact_removed"'))
    assert "x@acme.test n'est pas un contact de facturation de ce compte." in refused
    done = submit(browser, page, page + "/contacts/consent", {"email": "later@acme.test", "evidence": "ticket 4821"})
    text = unescape(shown(browser.get(done.headers["location"]), 200, 'data-done="consent_recorded"'))
    assert "L'accord du propriétaire est enregistré" in text
