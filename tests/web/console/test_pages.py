"""What staff read in the console: accounts found by id, name or a member's e-mail; an account's
members, banners and timeline (invoices, payment attempts, dunning steps, e-mails, events, audit
log) with their dates, newest first; who may reach which page and form, walked from the route
table so that a new page cannot escape the matrix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import request_contact
from renewly.scheduler import advance
from renewly.web.console import routes
from tests.builders import OPERATOR, customer, subscribed
from tests.web.console.conftest import FINANCE, SUPPORT, csrf_token, shown

DECLINES = "4000000000000341"  # the card saves fine; every charge is declined
PUBLIC = {("GET", "/sign-in"), ("POST", "/sign-in"), ("POST", "/sign-out")}
# A form's fields that the use case accepts on a fresh account with one invoice (or refuses as a
# billing rule would: never a 500).
FIELDS = {"/accounts/{account_id}/reactivate": {"reason": "asked by phone"},
          "/accounts/{account_id}/transfer-ownership": {"reason": "owner left", "to": "admin@acme.test"},
          "/accounts/{account_id}/resend-invoices": {"reason": "lost it", "month": "2026-01"},
          "/accounts/{account_id}/contacts/consent": {"email": "books@acme.test", "evidence": "ticket 4821"},
          "/accounts/{account_id}/contacts/remove": {"email": "books@acme.test", "evidence": "ticket 4822"}}


def console_routes() -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in routes.router.routes if isinstance(route, APIRoute)
                  for method in route.methods)


def test_every_console_route_is_in_the_matrix():
    assert {path for method, path in console_routes() if method == "POST"} - {path for _, path in PUBLIC} == set(
        FIELDS)


def visit(browser, method: str, path: str, account_id: int):
    url = "/console" + path.replace("{account_id}", str(account_id))
    if method == "GET":
        return browser.get(url, follow_redirects=False)
    return browser.post(url, data={"csrf_token": csrf_token(browser), **FIELDS[path]}, follow_redirects=False)


@pytest.mark.parametrize(("method", "path"), [route for route in console_routes() if route not in PUBLIC])
def test_access_matrix(app, staff, browsers, method, path):
    """Anonymous: to sign-in. Finance: reads, every action refused (403). Support: reads and acts.
    An account that does not exist: 404 to anyone signed in who may get that far."""
    account_id, _ = subscribed(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    request_contact(app, account_id, email="books@acme.test", requested_by="admin@acme.test")  # for the R4 forms
    anonymous = browsers.new()
    answer = visit(anonymous, method, path, account_id)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/console/sign-in"), answer.text
    finance, support = browsers.signed_in(FINANCE), browsers.signed_in(SUPPORT)
    if method == "GET":
        for browser in (finance, support):
            assert visit(browser, method, path, account_id).status_code == 200
    else:
        shown(visit(finance, method, path, account_id), 403, 'data-problem="read_only"')
        acted = visit(support, method, path, account_id)
        assert acted.status_code in (303, 403), acted.text  # done, or refused by a billing rule, not the role
        assert 'data-problem="read_only"' not in acted.text
    if "{account_id}" in path:
        for browser in (finance, support) if method == "GET" else (support,):
            shown(visit(browser, method, path, 999), 404, 'data-problem="not_found"')


def test_finance_sees_no_action_form_and_support_sees_them_all(app, staff, browsers):
    account_id = customer(app)
    page = shown(browsers.signed_in(FINANCE).get(f"/console/accounts/{account_id}"), 200, "Timeline")
    assert "data-action=" not in page and "finance (read only)" in page
    page = shown(browsers.signed_in(SUPPORT).get(f"/console/accounts/{account_id}"), 200, "Timeline")
    assert all(f'data-action="{action}"' in page for action in (
        "reactivate", "transfer-ownership", "resend-invoices", "contacts-consent", "contacts-remove"))


def test_accounts_are_found_by_id_name_and_any_member_s_email_whatever_the_case(app, staff, browsers):
    acme = customer(app, name="Acme Corp")
    other = customer(app, name="Globex", owner="boss@globex.test")
    add_member(app, acme, email="Agent.Smith@acme.test", role="agent", actor=OPERATOR)
    browser = browsers.signed_in(FINANCE)

    def found(query: str) -> set[int]:
        page = shown(browser.get("/console/", params={"q": query}), 200, "Search accounts")
        return {account for account in (acme, other) if f'data-account="{account}"' in page}

    assert found(str(other)) == {other}
    assert found("acme co") == {acme}
    assert found("agent.smith@ACME") == {acme}
    assert found("BOSS@globex") == {other}
    assert found(".test") == {acme, other}
    assert found("%") == set()  # a LIKE wildcard is a character like any other
    assert 'data-found="0"' in browser.get("/console/", params={"q": "nobody"}).text


def test_an_account_s_timeline_tells_its_story_with_dates_newest_first(app, staff, browsers):
    account_id, _ = subscribed(app, card=DECLINES)
    advance(app, datetime(2026, 1, 15, 12, tzinfo=UTC) - app.clock.now())  # declined, dunning steps taken
    page = shown(browsers.signed_in(FINANCE).get(f"/console/accounts/{account_id}"), 200, "Timeline")
    kinds = [line.split('data-entry="')[1].split('"')[0] for line in page.splitlines() if 'data-entry="' in line]
    assert {"invoice", "payment_attempt", "dunning_step", "email", "event", "audit"} <= set(kinds)
    assert "2026-01-01 00:00 UTC" in page and "2026-000001" in page and "declined" in page
    times = [line.split("<td>")[1].split("</td>")[0] for line in page.split('<tr data-entry="')[1:]]
    assert times == sorted(times, reverse=True)
    assert 'data-banner-role="owner"' in page


def test_a_deleted_account_is_still_shown_without_banners(app, staff, browsers):
    account_id, _ = subscribed(app, card=DECLINES)
    advance(app, timedelta(days=130))  # cancelled on day 29, its personal data deleted 90 days later (R10.1)
    page = shown(browsers.signed_in(SUPPORT).get(f"/console/accounts/{account_id}"), 200, "deleted")
    assert "data-banner-role" not in page


def test_staff_read_the_recovery_of_failed_payments_with_its_charts_and_table(app, staff, browsers):
    """The week the invoice entered dunning counts it failed, nothing recovered yet (docs/dunning.md,
    "The recovery report"); charts as SVG in the page, the same figures in a table."""
    account_id, _ = subscribed(app, card=DECLINES)
    advance(app, datetime(2026, 1, 15, 12, tzinfo=UTC) - app.clock.now())
    page = shown(browsers.signed_in(FINANCE).get("/console/recovery?weeks=4"), 200, "Recovery of failed payments")
    assert page.count("<svg") == 3 and 'id="recovery-usd"' in page
    week = page.split('2026-W01 <span class="day">')[1].split("</tr>")[0]
    cells = [cell.split("</td>")[0] for cell in week.split("<td>")[1:]]
    assert cells == ["1", "$68.40", "$0.00", "$0.00", "$68.40", "0%", "0 of 1", "–", "–", "0"]
    assert 'value="4"' in page


def test_the_recovery_page_refuses_weeks_it_cannot_show_in_a_readable_page(app, staff, browsers):
    browser = browsers.signed_in(SUPPORT)
    for weeks in ("0", "105", "many"):
        shown(browser.get(f"/console/recovery?weeks={weeks}"), 400, "data-problem=")
