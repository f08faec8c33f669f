"""The portal's pages by rule: only the owner manages billing (R1), the owner's invoices and
their PDFs (R2.2), the buyer address for future invoices only (R3.1), billing contacts (R4),
banners by role and day (R8.3, R8.4), a cancelled account (R9.1), a temporary reactivation
(R9.2), in the account's language (R12.1)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import list_contacts, request_contact
from renewly.adapters.db.tables import invoices
from renewly.billing.documents import invoice_pdf
from renewly.billing.invoices import show_invoice
from renewly.dunning.reactivation import grant_reactivation
from tests.builders import OPERATOR, customer, subscribed, team_plan
from tests.web.portal.conftest import shown, submit
from tests.web.test_dunning import DAY_4_TEXT, DAY_21_TEXT, declined, to_day

OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
BILLING_PAGES = ("/portal/invoices", "/portal/address", "/portal/contacts", "/portal/invoices/1/pdf", "/portal/card")


def team(app, **account) -> int:
    """A paying account (its first invoice issued, 3 seats of 19.00 USD) with an admin and an agent."""
    account_id, _ = subscribed(app, **account)
    domain = account.get("owner", OWNER).partition("@")[2]
    add_member(app, account_id, email=f"admin@{domain}", role="admin", actor=OPERATOR)
    add_member(app, account_id, email=f"agent@{domain}", role="agent", actor=OPERATOR)
    return account_id


def banner_of(page: str) -> str | None:
    found = re.search(r'data-banner="([a-z_]+)"', page)
    return found.group(1) if found else None


def test_r1_1_the_owner_sees_plan_seats_and_card(app, browsers):
    account_id = team(app)
    page = shown(browsers.signed_in(account_id, OWNER).get("/portal/"), 200, "Plan and seats")
    assert re.search(r"<td>Team</td>\s*<td>3</td>\s*<td>\$19.00 / month</td>\s*<td>Feb 1, 2026</td>", page)
    assert 'data-card="4242"' in page


def test_r1_1_admins_and_agents_are_told_that_only_the_named_owner_manages_billing(app, browsers):
    account_id = team(app)
    for member in (ADMIN, AGENT):
        browser = browsers.signed_in(account_id, member)
        home = shown(browser.get("/portal/"), 200, "Only the account owner (owner@acme.test) can see invoices")
        assert "2026-000001" not in home and "4242" not in home
        for page in BILLING_PAGES:
            refused = shown(browser.get(page), 403, 'data-problem="owner_only"')
            assert "Only the account owner (owner@acme.test) can see invoices, change the card" in refused
            assert "2026-000001" not in refused
        # Nor do their forms change anything.
        shown(submit(browser, "/portal/", "/portal/address", {"name": "Hijacked", "country": "FR"}), 403,
              'data-problem="owner_only"')
        assert "Hijacked" not in shown(browsers.signed_in(account_id, OWNER).get("/portal/address"), 200, "Acme")


def test_r1_2_an_owner_never_reaches_another_account_s_invoice(app, browsers):
    account_id = team(app)
    other, _ = subscribed(app, name="Other", owner="boss@other.test", plan="team")
    with app.engine.connect() as conn:
        foreign = conn.execute(select(invoices.c.id).where(invoices.c.account_id == other)).scalar_one()
    browser = browsers.signed_in(account_id, OWNER)
    shown(browser.get(f"/portal/invoices/{foreign}/pdf"), 404, 'data-problem="not_found"')
    assert f"/portal/invoices/{foreign}/pdf" not in browser.get("/portal/invoices").text


def test_r2_2_the_owner_lists_invoices_and_downloads_each_stored_pdf_in_the_account_s_language(app, browsers):
    account_id = team(app, locale="fr")
    browser = browsers.signed_in(account_id, OWNER)
    page = shown(browser.get("/portal/invoices"), 200, 'data-invoice="2026-000001"')
    assert "Télécharger le PDF" in page and "68,40" in page  # 57.00 + 20 % VAT, in French
    [link] = re.findall(r'href="(/portal/invoices/\d+/pdf)"', page)
    download = browser.get(link)
    assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith('attachment; filename="facture-2026-000001.pdf"')
    assert download.content == invoice_pdf(app, "2026-000001", acting_email=OWNER)  # the stored bytes (R2.4)


def test_r3_1_the_address_form_says_it_applies_to_future_invoices_and_issued_ones_keep_theirs(app, browsers):
    account_id = team(app)
    browser = browsers.signed_in(account_id, OWNER)
    form = shown(browser.get("/portal/address"), 200, 'data-rule="R3.1"')
    assert "Changes apply to future invoices only" in form
    fields = {"name": "Acme SAS", "line1": "1 rue Neuve", "line2": "", "postcode": "69001", "city": "Lyon",
              "country": "fr", "vat_id": ""}
    saved = shown(submit(browser, "/portal/address", "/portal/address", fields), 200, "Saved.")
    assert 'value="1 rue Neuve"' in saved and 'value="FR"' in saved
    to_day(app, 31)  # the renewal of Feb 1 issues the next invoice
    issued_before, issued_after = show_invoice(app, "2026-000001")["buyer"], show_invoice(app, "2026-000002")["buyer"]
    assert (issued_before["name"], issued_before["city"]) == ("Acme", "")  # it keeps the buyer it was issued with
    assert (issued_after["name"], issued_after["line1"], issued_after["city"]) == ("Acme SAS", "1 rue Neuve", "Lyon")
    browser = browsers.signed_in(account_id, OWNER)
    refused = shown(submit(browser, "/portal/address", "/portal/address", {**fields, "country": ""}), 400,
                    'role="alert"')
    assert "country" in refused


def test_r4_the_owner_approves_refuses_and_removes_billing_contacts(app, browsers):
    account_id = team(app)
    request_contact(app, account_id, email="books@acme.test", requested_by=ADMIN)
    request_contact(app, account_id, email="spam@acme.test", requested_by=AGENT)
    browser = browsers.signed_in(account_id, OWNER)
    page = shown(browser.get("/portal/contacts"), 200, 'data-request="books@acme.test"')
    assert 'data-contact="owner@acme.test"' in page and "owner, always a contact" in page
    approved = submit(browser, "/portal/contacts", "/portal/contacts/approve", {"email": "books@acme.test"})
    assert (approved.status_code, approved.headers["location"]) == (303, "/portal/contacts")
    # With htmx, the answer is the list alone, swapped in place.
    refused = submit(browser, "/portal/contacts", "/portal/contacts/refuse", {"email": "spam@acme.test"},
                     **{"HX-Request": "true"})
    assert refused.status_code == 200 and refused.text.startswith('<div id="contacts">')
    assert "<html" not in refused.text and 'data-contact="books@acme.test"' in refused.text
    assert {(c["email"], c["status"]) for c in list_contacts(app, account_id)} == {
        (OWNER, "active"), ("books@acme.test", "active")}
    submit(browser, "/portal/contacts", "/portal/contacts/remove", {"email": "books@acme.test"})
    owner_kept = submit(browser, "/portal/contacts", "/portal/contacts/remove", {"email": OWNER})
    shown(owner_kept, 400, 'role="alert"')
    assert [c["email"] for c in list_contacts(app, account_id)] == [OWNER]


def test_r4_1_an_agent_asks_to_receive_the_billing_emails_and_waits_for_the_owner(app, browsers):
    account_id = team(app)
    browser = browsers.signed_in(account_id, AGENT)
    shown(submit(browser, "/portal/", "/portal/contact-request", {}), 200, "Your request was sent to owner@acme.test")
    assert {(c["email"], c["status"]) for c in list_contacts(app, account_id)} == {
        (OWNER, "active"), (AGENT, "requested")}
    shown(browsers.signed_in(account_id, OWNER).get("/portal/contacts"), 200, f'data-request="{AGENT}"')


def test_r8_3_r8_4_each_member_sees_the_banner_of_their_role_and_day(app, browsers):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    people = {member: browsers.signed_in(account_id, member) for member in (OWNER, ADMIN, AGENT)}
    pages = {member: shown(browser.get("/portal/"), 200, "Acme") for member, browser in people.items()}
    assert {member: banner_of(page) for member, page in pages.items()} == {
        OWNER: "owner_and_admins", ADMIN: "owner_and_admins", AGENT: "none"}
    assert DAY_4_TEXT in pages[ADMIN] and "Nothing needs your attention." in pages[AGENT]
    to_day(app, 21)
    people = {member: browsers.signed_in(account_id, member) for member in (OWNER, ADMIN, AGENT)}
    pages = {member: shown(browser.get("/portal/"), 200, "Acme") for member, browser in people.items()}
    assert {member: banner_of(page) for member, page in pages.items()} == dict.fromkeys(pages, "everyone")
    assert all(DAY_21_TEXT in page for page in pages.values())


def test_r9_1_every_member_of_a_cancelled_account_sees_why_and_how_to_ask_support(app, browsers):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 29)
    for member in (OWNER, ADMIN, AGENT):
        browser = browsers.signed_in(account_id, member)
        for page in ("/portal/", *BILLING_PAGES):
            refused = shown(browser.get(page), 403, 'data-problem="cancelled"')
            assert "It was cancelled on Jan 30, 2026 because an invoice was not paid." in refused
            assert "Its data will be deleted on" in refused
            assert "can ask support for a temporary reactivation" in refused
            assert app.settings.seller.support_email in refused  # the banner names whom to ask
            assert "2026-000001" not in refused


def test_r9_2_during_a_temporary_reactivation_only_the_owner_reaches_the_billing_pages(app, browsers):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 29)
    grant_reactivation(app, account_id, days=None, reason="asked by phone", actor=OPERATOR)
    owner = browsers.signed_in(account_id, OWNER)
    home = shown(owner.get("/portal/"), 200, "Plan and seats")
    assert banner_of(home) == "reactivated"
    shown(owner.get("/portal/invoices"), 200, 'data-invoice="2026-000001"')
    assert owner.get("/portal/invoices/1/pdf").headers["content-type"] == "application/pdf"
    for member in (ADMIN, AGENT):
        browser = browsers.signed_in(account_id, member)
        for page in ("/portal/", *BILLING_PAGES):
            shown(browser.get(page), 403, 'data-problem="cancelled"')


def test_r12_1_the_pages_speak_the_account_s_language(app, browsers):
    account_id = customer(app, locale="fr")
    page = shown(browsers.signed_in(account_id, OWNER).get("/portal/address"), 200, '<html lang="fr">')
    assert "Les modifications s'appliquent uniquement aux factures futures" in page.replace("&#39;", "'")
    assert "Se déconnecter" in page


def test_r12_1_a_refused_address_is_said_in_the_account_s_language_naming_the_field(app, browsers):
    account_id = team(app, locale="fr")
    browser = browsers.signed_in(account_id, OWNER)
    fields = {"name": "Acme SAS", "line1": "", "line2": "", "postcode": "", "city": "L" * 101, "country": "FR",
              "vat_id": ""}
    refused = unescape(shown(submit(browser, "/portal/address", "/portal/address", fields), 400, 'role="alert"'))
    assert "Ville : 100 caractères au plus." in refused and "at most 100 characters" not in refused
    refused = unescape(shown(submit(browser, "/portal/address", "/portal/address", {**fields, "city": "Lyon",
                                                                                      "country": "QQ"}), 400, "QQ"))
    assert "Pays inconnu « QQ » : indiquez son code ISO 3166" in refused and "unknown country" not in refused


def test_r12_1_a_refused_contact_change_is_said_in_the_account_s_language(app, browsers):
    account_id = team(app, locale="fr")
    browser = browsers.signed_in(account_id, OWNER)
    refused = unescape(shown(submit(browser, "/portal/contacts", "/portal/contacts/remove", {"email": OWNER}), 400,
                             'role="alert"'))
    assert "owner@acme.test est propriétaire de ce compte : le propriétaire reçoit toujours" in refused
    assert "support transfers ownership" not in refused


def test_r12_1_a_rule_s_refusal_page_is_in_the_reader_s_language_not_the_rule_s_english(app, browsers):
    account_id = team(app, locale="fr")
    browser = browsers.signed_in(account_id, OWNER)
    # The account's language, whatever the browser's: the member reads French everywhere else.
    page = unescape(shown(browser.get("/portal/invoices/999/pdf", headers={"Accept-Language": "en"}), 404,
                          'data-problem="not_found"'))
    assert "Cette facture n'existe pas." in page and "no invoice 999" not in page


@pytest.mark.parametrize(("request_made", "status", "problem"), [
    (lambda browser: browser.get("/portal/no-such-page"), 404, "not_found"),
    (lambda browser: browser.post("/portal/address", data={"city": "Lyon"}), 403, "csrf"),  # no form token
])
def test_r12_1_a_signed_in_member_s_refusal_pages_are_in_the_account_s_language(app, browsers, request_made,
                                                                                 status, problem):
    account_id = team(app, locale="fr")
    browser = browsers.signed_in(account_id, OWNER)
    browser.headers["Accept-Language"] = "en-US,en;q=0.9"
    page = shown(request_made(browser), status, f'data-problem="{problem}"')
    assert '<html lang="fr">' in page
    browser.cookies.clear()  # signed out: the browser's language
    assert '<html lang="en">' in shown(request_made(browser), status,
                                       f'data-problem="{problem}"')
