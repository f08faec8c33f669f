"""The console in a real browser (pytest-playwright driving Debian's Chromium, as the portal's
browser tests do: tests/web/portal/test_browser.py, whose fixtures this reuses): a support
staff member signs in with the form, finds a cancelled account by its owner's e-mail, grants a
temporary reactivation with a reason (R9.2) and reads it in the timeline; finance sees no form."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from renewly.scheduler import advance
from tests.builders import subscribed
from tests.web.console.conftest import FINANCE, PASSWORD, SUPPORT
from tests.web.portal import test_browser as portal_browser

DECLINES = "4000000000000341"
# The portal's browser fixtures: Debian's Chromium, and `renewly serve`'s application in a thread.
browser_type_launch_args = portal_browser.browser_type_launch_args
served = portal_browser.served


def sign_in(page, served_at: str, email: str) -> None:
    page.goto(served_at + "/console/")
    expect(page).to_have_url(served_at + "/console/sign-in")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(served_at + "/console/")


def test_r9_2_support_finds_a_cancelled_account_and_grants_a_reactivation_in_a_browser(app, staff, served, page):
    account_id, _ = subscribed(app, card=DECLINES, owner="boss@acme.test")
    advance(app, timedelta(days=30))  # cancelled on day 29
    sign_in(page, served, SUPPORT)
    page.get_by_label("Account id, name, or a member's e-mail").fill("BOSS@acme")
    page.get_by_role("button", name="Search").click()
    page.locator(f'tr[data-account="{account_id}"]').get_by_role("link", name="Acme").click()
    expect(page).to_have_url(f"{served}/console/accounts/{account_id}")
    form = page.locator('form[data-action="reactivate"]')
    form.get_by_label("Reason, for the audit log").fill("the owner called to pay")
    form.get_by_role("button", name="Grant").click()
    expect(page.locator('[data-done="reactivated"]')).to_have_count(1)
    expect(page.locator('tr[data-entry="audit"]', has_text="reactivation.granted").first).to_contain_text(
        "Sam Support")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(served + "/console/sign-in")

    sign_in(page, served, FINANCE)
    page.goto(f"{served}/console/accounts/{account_id}")
    expect(page.locator("h2", has_text="Timeline")).to_have_count(1)
    expect(page.locator("form[data-action]")).to_have_count(0)
