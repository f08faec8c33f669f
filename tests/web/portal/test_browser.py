"""The portal in a real browser (pytest-playwright driving Debian's Chromium, /usr/bin/chromium:
Playwright's own browser download is not used): the owner opens a one-time sign-in link, sees the
overview, goes to the invoices and downloads a PDF, the same bytes the API gives (R2.2, R2.4);
the owner changes the card on the simulated gateway's form and comes back (R5.4), and the buyer
address, which the page says applies to future invoices only (R3.1); a contact removes itself
with a billing e-mail's link (R4.2); an agent sees no banner on day 4 and the cancellation
warning on day 21, an admin the day-4 one (R8.3, R8.4); every member of a cancelled account is
told why and how to ask support, and the owner reaches no billing page (R9.1). The owner's
payment during a reactivation support granted is in tests/web/console/test_browser.py (R9.2).

`renewly serve`'s application runs in a thread (uvicorn) on the test's database. Chromium comes
from .ci/run (`apt-get install chromium`); without it the test is skipped, with the reason, only
where PostgreSQL is not required either (a developer's machine): CI fails instead.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import expect

from renewly.accounts.contacts import request_contact
from renewly.billing.documents import invoice_pdf
from renewly.portal.sessions import create_link
from renewly.web.app import create_app
from tests.accounts.test_removal_links import link_for, recipients
from tests.builders import OPERATOR, subscribed, team_plan
from tests.conftest import require_chromium
from tests.web.portal.test_pages import BILLING_PAGES
from tests.web.test_dunning import DAY_4_TEXT, DAY_21_TEXT, declined, to_day

OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch, with Debian's Chromium."""
    return {**browser_type_launch_args, "executable_path": str(require_chromium())}


@pytest.fixture
def served(app):
    """The application `renewly serve` runs, on a free port of the loopback, until the test ends."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(app), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    ready = threading.Event()
    while not server.started and thread.is_alive():
        ready.wait(0.01)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    server.should_exit = True
    thread.join()
    listening.close()


def open_link(app, page, served_at: str, account_id: int, member: str):
    """The member opens a fresh one-time link, as the host product hands it over (any session
    this browser held ends); the answer of the page it leads to."""
    return page.goto(served_at + urlsplit(create_link(app, account_id, member=member, actor=OPERATOR).url).path)


def change_card_on_the_gateway_s_form(page) -> None:
    """From a portal page: the card page, the gateway's own form (R5.4: the number never reaches
    Renewly), a card that pays saved; back on the portal's card page."""
    page.get_by_role("link", name="Card", exact=True).click()
    page.get_by_role("link", name="Change the card").click()
    expect(page).to_have_url(re.compile(r"/gateway/sim/card-form(\?|$)"))
    page.get_by_label("Card number").fill("5555 5555 5555 4444")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2035")
    page.get_by_role("button", name="Save the card").click()
    expect(page).to_have_url(re.compile(r"/portal/card(\?|$)"))


def test_r2_2_the_owner_signs_in_by_link_and_downloads_an_invoice_pdf_in_a_browser(app, served, page):
    account_id, _ = subscribed(app)
    link = create_link(app, account_id, member=OWNER, actor=OPERATOR)
    page.goto(served + urlsplit(link.url).path)
    assert page.url == served + "/portal/"
    expect(page.locator("h2").first).to_have_text("Plan and seats")
    page.get_by_role("link", name="Invoices").click()
    row = page.locator('tr[data-invoice="2026-000001"]')
    with page.expect_download() as downloading:
        row.get_by_role("link", name="Download the PDF").click()
    download = downloading.value
    assert download.suggested_filename == "invoice-2026-000001.pdf"
    assert Path(download.path()).read_bytes() == invoice_pdf(app, "2026-000001", acting_email=OWNER)
    # Signed out, the same pages ask to sign in again; the link does not work twice.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator('[data-problem="signed_out"]')).to_have_count(1)
    page.goto(served + "/portal/invoices")
    expect(page.locator('[data-problem="sign_in_required"]')).to_have_count(1)
    page.goto(served + urlsplit(link.url).path)
    expect(page.locator('[data-problem="portal_link_used"]')).to_have_count(1)


def test_r5_4_the_owner_changes_the_card_on_the_gateway_s_form_in_a_browser(app, served, page):
    """The portal's link, the gateway's form (its own page and policy), the way back with a token."""
    account_id, _ = subscribed(app, card=None)
    page.goto(served + urlsplit(create_link(app, account_id, member=OWNER, actor=OPERATOR).url).path)
    change_card_on_the_gateway_s_form(page)
    expect(page.locator('[data-saved="card"]')).to_have_count(1)
    expect(page.locator('[data-card="4444"]')).to_have_text("mastercard ending in 4444, expires 12/2035")


def test_r4_2_a_contact_removes_itself_with_the_e_mail_s_link_in_a_browser(app, served, page):
    account_id, _ = subscribed(app)
    request_contact(app, account_id, email="books@acme.test", requested_by=OWNER)
    page.goto(served + urlsplit(link_for(app, account_id, "books@acme.test")).path)
    expect(page.locator('[data-removal="confirm"]')).to_have_count(1)
    assert recipients(app, account_id) == [OWNER, "books@acme.test"]  # opening it removed nothing
    page.get_by_role("button", name="Stop the billing e-mails").click()
    expect(page.locator('[data-removal="done"]')).to_have_count(1)
    assert recipients(app, account_id) == [OWNER]


def test_r3_1_the_owner_changes_the_buyer_address_for_future_invoices_only_in_a_browser(app, api, served, page):
    account_id, _ = subscribed(app)  # its first invoice, 2026-000001, issued to "Acme", no city
    open_link(app, page, served, account_id, OWNER)
    page.get_by_role("link", name="Buyer address").click()
    expect(page.locator('[data-rule="R3.1"]')).to_have_text(
        "Changes apply to future invoices only: invoices already issued keep the address they were issued with.")
    page.get_by_label("Organisation name").fill("Acme SAS")
    page.get_by_label("Address", exact=True).fill("1 rue Neuve")
    page.get_by_label("Postcode").fill("69001")
    page.get_by_label("City").fill("Lyon")
    page.get_by_label("Country (ISO code, e.g. FR)").fill("fr")
    page.get_by_role("button", name="Save for future invoices").click()
    expect(page.locator("p.saved")).to_have_text("Saved. Your next invoices will carry this address.")
    expect(page.get_by_label("Country (ISO code, e.g. FR)")).to_have_value("FR")

    buyer = api.get(f"/v1/accounts/{account_id}").json()["buyer"]
    assert (buyer["name"], buyer["line1"], buyer["postcode"], buyer["city"], buyer["country"]) == (
        "Acme SAS", "1 rue Neuve", "69001", "Lyon", "FR")
    to_day(app, 31)  # the renewal of Feb 1 issues the next invoice
    issued = {shown["number"]: shown["buyer"] for shown in
              api.get("/v1/invoices", params={"account_id": account_id}).json()["data"]}
    assert (issued["2026-000001"]["name"], issued["2026-000001"]["city"]) == ("Acme", "")  # kept as issued
    assert (issued["2026-000002"]["name"], issued["2026-000002"]["city"]) == ("Acme SAS", "Lyon")


def test_r8_3_r8_4_an_agent_sees_no_banner_on_day_4_an_admin_does_and_the_agent_does_on_day_21_in_a_browser(
        app, served, page):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    open_link(app, page, served, account_id, AGENT)
    expect(page.locator('[data-banner="none"]')).to_have_text("Nothing needs your attention.")
    expect(page.get_by_role("alert")).to_have_count(0)

    open_link(app, page, served, account_id, ADMIN)
    expect(page.locator('[data-banner="owner_and_admins"]')).to_have_text(DAY_4_TEXT)

    to_day(app, 21)
    open_link(app, page, served, account_id, AGENT)
    expect(page.get_by_role("alert")).to_have_text(DAY_21_TEXT)
    expect(page.locator('[data-banner="everyone"]')).to_have_count(1)


def test_r9_1_every_member_of_a_cancelled_account_is_refused_with_why_and_how_to_ask_support_in_a_browser(
        app, served, page):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 29)  # cancelled on Jan 30
    refusal = page.locator('[data-problem="cancelled"]')
    for member in (ADMIN, AGENT, OWNER):
        assert open_link(app, page, served, account_id, member).status == 403
        expect(page).to_have_url(served + "/portal/")
        expect(refusal.locator("h1")).to_have_text("This account is cancelled")
        expect(refusal).to_contain_text("It was cancelled on Jan 30, 2026 because an invoice was not paid.")
        expect(refusal).to_contain_text("Its data will be deleted on")
        expect(refusal).to_contain_text(
            "The account owner (owner@acme.test) can ask support for a temporary reactivation to update the card")
        expect(page.get_by_role("alert")).to_contain_text(app.settings.seller.support_email)  # whom to ask
    # The owner, the one member who had them, reaches none of the billing pages: the nav's links
    # and a PDF's address are refused alike (every member and page: tests/web/portal/test_pages.py).
    for billing_page in BILLING_PAGES:
        assert page.goto(served + billing_page).status == 403, billing_page
        expect(refusal).to_have_count(1)
        expect(page.locator("body")).not_to_contain_text("2026-000001")
