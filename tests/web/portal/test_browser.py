"""A smoke test in a real browser (pytest-playwright driving Debian's Chromium, /usr/bin/chromium:
Playwright's own browser download is not used): the owner opens a one-time sign-in link, sees the
overview, goes to the invoices and downloads a PDF, the same bytes the API gives (R2.2, R2.4);
the owner changes the card on the simulated gateway's form and comes back (R5.4); a contact
removes itself with a billing e-mail's link (R4.2).

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
from tests.builders import OPERATOR, subscribed
from tests.conftest import require_chromium

OWNER = "owner@acme.test"


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
    page.get_by_role("link", name="Card", exact=True).click()
    page.get_by_role("link", name="Change the card").click()
    expect(page).to_have_url(re.compile(r"/gateway/sim/card-form(\?|$)"))
    page.get_by_label("Card number").fill("5555 5555 5555 4444")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2035")
    page.get_by_role("button", name="Save the card").click()
    expect(page).to_have_url(re.compile(r"/portal/card(\?|$)"))
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
