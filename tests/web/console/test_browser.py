"""The console in a real browser (pytest-playwright driving Debian's Chromium, as the portal's
browser tests do: tests/web/portal/test_browser.py, whose fixtures this reuses): a support
staff member signs in with the form, finds a cancelled account by its owner's e-mail, grants a
temporary reactivation with a reason (R9.2) and reads it in the timeline; finance sees no form.
Then the owner's part of R9.2: during the window, signed in by their link, the owner changes the
card on the simulated gateway's form; the next payment batch charges it, the account is active
again, and the owner and every approved billing contact get the payment confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from renewly.accounts.contacts import approve_contact, request_contact
from renewly.adapters.db.tables import accounts, outbox
from renewly.scheduler import advance
from tests.builders import subscribed, team_plan
from tests.web.console.conftest import FINANCE, PASSWORD, SUPPORT
from tests.web.portal import test_browser as portal_browser
from tests.web.test_dunning import ADMIN, AGENT, OWNER, declined, to_day

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


def confirmations(app, account_id: int) -> list[list[str]]:
    """The recipients of each payment confirmation e-mail of the account, in the outbox."""
    with app.engine.connect() as conn:
        return [payload["recipients"] for payload in conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == "email", outbox.c.account_id == account_id)
            .order_by(outbox.c.id)).scalars() if payload["kind"] == "payment_confirmed"]


def test_r9_2_support_grants_a_reactivation_the_owner_pays_and_every_billing_contact_is_confirmed_in_a_browser(
        app, staff, served, page):
    account_id = declined(app, plan=team_plan(app))  # an owner, an admin and an agent; the card declines
    request_contact(app, account_id, email="books@acme.test", requested_by=OWNER)  # the owner's own: added
    request_contact(app, account_id, email=ADMIN, requested_by=ADMIN)
    approve_contact(app, account_id, email=ADMIN, acting_email=OWNER)
    request_contact(app, account_id, email=AGENT, requested_by=AGENT)  # never approved: told nothing
    to_day(app, 29)  # cancelled on Jan 30, at noon
    sign_in(page, served, SUPPORT)
    page.goto(f"{served}/console/accounts/{account_id}")
    form = page.locator('form[data-action="reactivate"]')
    form.get_by_label("Reason, for the audit log").fill("the owner called to pay")
    form.get_by_role("button", name="Grant").click()
    expect(page.locator('[data-done="reactivated"]')).to_have_count(1)

    portal_browser.open_link(app, page, served, account_id, OWNER)
    expect(page.locator('[data-banner="reactivated"]')).to_have_count(1)
    portal_browser.change_card_on_the_gateway_s_form(page)
    expect(page.locator('[data-saved="card"]')).to_contain_text(
        "Unpaid invoices (1) will be charged to it at the next payment run.")
    assert confirmations(app, account_id) == []  # nothing is charged before the batch

    advance(app, datetime(2026, 1, 30, 14, tzinfo=UTC) - app.clock.now())  # the payment batch of 13:00
    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.status).where(accounts.c.id == account_id)).scalar() == "active"
    assert [sorted(recipients) for recipients in confirmations(app, account_id)] == [
        sorted([OWNER, ADMIN, "books@acme.test"])]
    # Back later (the session idled out meanwhile), by a new link: the portal of an active account.
    portal_browser.open_link(app, page, served, account_id, OWNER)
    expect(page.locator("h2").first).to_have_text("Plan and seats")
    expect(page.locator('[data-banner="reactivated"]')).to_have_count(0)
