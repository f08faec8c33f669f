"""A smoke test in a real browser (pytest-playwright driving Debian's Chromium, /usr/bin/chromium:
Playwright's own browser download is not used): the owner opens a one-time sign-in link, sees the
overview, goes to the invoices and downloads a PDF, the same bytes the API gives (R2.2, R2.4).

`renewly serve`'s application runs in a thread (uvicorn) on the test's database. Chromium comes
from .ci/run (`apt-get install chromium`); without it the test is skipped, with the reason, only
where PostgreSQL is not required either (a developer's machine): CI fails instead.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from renewly.billing.documents import invoice_pdf
from renewly.portal.sessions import create_link
from renewly.web.app import create_app
from tests.builders import OPERATOR, subscribed

CHROMIUM = Path("/usr/bin/chromium")
OWNER = "owner@acme.test"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch, with Debian's Chromium."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("RENEWLY_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}: required in CI (.ci/run installs it)")
        pytest.skip(reason)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


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
    assert page.locator("h2").first.inner_text() == "Plan and seats"
    page.get_by_role("link", name="Invoices").click()
    row = page.locator('tr[data-invoice="2026-000001"]')
    with page.expect_download() as downloading:
        row.get_by_role("link", name="Download the PDF").click()
    download = downloading.value
    assert download.suggested_filename == "invoice-2026-000001.pdf"
    assert Path(download.path()).read_bytes() == invoice_pdf(app, "2026-000001", acting_email=OWNER)
    # Signed out, the same pages ask to sign in again; the link does not work twice.
    page.get_by_role("button", name="Sign out").click()
    assert page.locator('[data-problem="signed_out"]').count() == 1
    page.goto(served + "/portal/invoices")
    assert page.locator('[data-problem="sign_in_required"]').count() == 1
    page.goto(served + urlsplit(link.url).path)
    assert page.locator('[data-problem="portal_link_used"]').count() == 1
