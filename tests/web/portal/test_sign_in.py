"""Signing in to the portal: a one-time link (the API's POST /v1/portal_sessions, or `renewly
portal link`) opens a server-side session held in an HttpOnly, SameSite=Lax cookie, Secure over
HTTPS; a new session id at every sign-in; sign-out and expiry end it; no page without one."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from fastapi.routing import APIRoute
from sqlalchemy import select

from renewly.accounts.accounts import add_member, remove_member
from renewly.adapters.db.tables import portal_links, portal_sessions
from renewly.portal.sessions import create_link
from renewly.web.portal import routes
from tests.builders import OPERATOR, customer, subscribed
from tests.web.conftest import problem
from tests.web.portal.conftest import BASE, path_of, shown, submit

OWNER, ADMIN = "owner@acme.test", "admin@acme.test"


def session_cookie(response) -> str:
    [cookie] = [value for value in response.headers.get_list("set-cookie") if value.startswith("renewly_portal=")]
    return cookie


def test_the_host_product_asks_the_api_for_a_link_that_signs_the_member_in_once(app, client, browsers):
    account_id = customer(app)
    answer = client.post("/v1/portal_sessions", json={"account_id": account_id, "member": "Owner@Acme.test"})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (made["object"], made["account_id"], made["member"]) == ("portal_session", account_id, OWNER)
    assert made["url"].startswith(BASE + "/portal/sign-in/") and made["expires_at"] == "2026-01-01T00:05:00Z"
    browser = browsers.new()
    opened = browser.get(path_of(made["url"]), follow_redirects=False)
    assert (opened.status_code, opened.headers["location"]) == (303, "/portal/")
    shown(browser.get("/portal/"), 200, "Plan and seats")
    # Once: the same link again, in this browser or another, signs nobody in.
    for again in (browser, browsers.new()):
        shown(again.get(path_of(made["url"]), follow_redirects=False), 403, 'data-problem="portal_link_used"')
    # Only the SHA-256 of the token and of the session id are kept.
    token = path_of(made["url"]).rpartition("/")[2]
    with app.engine.connect() as conn:
        stored = conn.execute(select(portal_links.c.token_hash)).scalar_one()
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        assert conn.execute(select(portal_sessions.c.secret_hash)).scalar_one() == hashlib.sha256(
            browser.cookies["renewly_portal"].encode()).hexdigest()


def test_a_link_is_refused_to_unknown_members_and_accounts_and_without_a_key(app, client, anonymous):
    account_id = customer(app)
    problem(client.post("/v1/portal_sessions", json={"account_id": account_id, "member": "x@else.test"}), 404,
            "unknown_member")
    problem(client.post("/v1/portal_sessions", json={"account_id": 999, "member": OWNER}), 404, "unknown_account")
    problem(client.post("/v1/portal_sessions", json={"account_id": account_id}), 422, "invalid_input")
    problem(anonymous.post("/v1/portal_sessions", json={"account_id": account_id, "member": OWNER}), 401,
            "unauthorized")


def test_a_link_expires_after_portal_link_minutes(app, browsers):
    account_id = customer(app)
    made = create_link(app, account_id, member=OWNER, actor=OPERATOR)
    app.test_clock.set(made.expires_at)
    shown(browsers.new().get(path_of(made.url), follow_redirects=False), 403, 'data-problem="portal_link_expired"')
    shown(browsers.new().get("/portal/sign-in/not-a-token", follow_redirects=False), 404,
          'data-problem="portal_link_invalid"')


def test_the_session_cookie_is_httponly_lax_secure_over_https_and_not_over_plain_http(app, browsers):
    account_id = customer(app)
    over_https = browsers.new().get(path_of(create_link(app, account_id, member=OWNER, actor=OPERATOR).url),
                                    follow_redirects=False)
    cookie = session_cookie(over_https)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie and "Secure" in cookie
    over_http = browsers.new("http://localhost").get(
        path_of(create_link(app, account_id, member=OWNER, actor=OPERATOR).url), follow_redirects=False)
    cookie = session_cookie(over_http)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


def test_behind_a_proxy_that_terminates_tls_the_https_only_setting_makes_every_cookie_secure(databases, db_kind):
    from fastapi.testclient import TestClient

    from renewly.web.app import create_app
    app = databases.fresh_app(db_kind, portal={"https_only": True})
    account_id = customer(app)
    with TestClient(create_app(app), base_url="http://localhost") as browser:
        opened = browser.get(path_of(create_link(app, account_id, member=OWNER, actor=OPERATOR).url),
                             follow_redirects=False)
    assert all("Secure" in cookie for cookie in opened.headers.get_list("set-cookie"))
    assert len(opened.headers.get_list("set-cookie")) == 2  # the session's and the CSRF token's


def test_a_new_session_id_at_each_sign_in_and_the_one_it_replaces_ends(app, browsers):
    account_id = customer(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    browser = browsers.signed_in(account_id, OWNER)
    first = browser.cookies["renewly_portal"]
    stolen = browsers.new()
    stolen.cookies.set("renewly_portal", first, domain="billing.renewly.example", path="/portal")
    shown(stolen.get("/portal/"), 200, "Plan and seats")
    browsers.signed_in(account_id, ADMIN, client=browser)  # another link opened in the same browser
    assert browser.cookies["renewly_portal"] != first
    shown(browser.get("/portal/"), 200, "Only the account owner (owner@acme.test)")
    shown(stolen.get("/portal/"), 401, 'data-problem="sign_in_required"')


def test_sign_out_ends_the_session_on_the_server_too(app, browsers):
    account_id = customer(app)
    browser = browsers.signed_in(account_id, OWNER)
    secret = browser.cookies["renewly_portal"]
    shown(submit(browser, "/portal/", "/portal/sign-out", {}), 200, 'data-problem="signed_out"')
    shown(browser.get("/portal/"), 401, 'data-problem="sign_in_required"')
    replayed = browsers.new()
    replayed.cookies.set("renewly_portal", secret, domain="billing.renewly.example", path="/portal")
    shown(replayed.get("/portal/"), 401, 'data-problem="sign_in_required"')


def test_a_session_ends_when_left_idle_and_at_the_latest_session_hours_after_sign_in(app, browsers):
    account_id = customer(app)
    settings = app.settings.portal
    idle = browsers.signed_in(account_id, OWNER)
    active = browsers.signed_in(account_id, OWNER)
    start = app.clock.now()
    for minutes in range(settings.session_idle_minutes - 1, settings.session_hours * 60, settings.session_idle_minutes
                         - 1):
        app.test_clock.set(start + timedelta(minutes=minutes))
        shown(active.get("/portal/"), 200, "Plan and seats")
    shown(idle.get("/portal/"), 401, 'data-problem="sign_in_required"')
    app.test_clock.set(start + timedelta(hours=settings.session_hours))
    shown(active.get("/portal/"), 401, 'data-problem="sign_in_required"')


def test_a_member_removed_loses_their_session(app, browsers):
    account_id = customer(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    browser = browsers.signed_in(account_id, ADMIN)
    remove_member(app, account_id, email=ADMIN, actor=OPERATOR)
    shown(browser.get("/portal/"), 401, 'data-problem="sign_in_required"')


def test_no_page_answers_without_a_session(app, browsers):
    """Every route of the portal but sign-in, read from its route table: a new page cannot escape.
    The removal link's page (R4.2) needs no session: its signed token is the credential, and
    without one that holds it shows nothing of any account."""
    subscribed(app)
    anonymous = browsers.new()
    token = anonymous.get("/portal/sign-in/x").cookies.get("renewly_csrf") or anonymous.cookies["renewly_csrf"]
    checked = 0
    for route in routes.router.routes:
        assert isinstance(route, APIRoute)
        if route.path == "/sign-in/{token}":
            continue
        path = "/portal" + route.path.replace("{invoice_id}", "1").replace("{action}", "approve")
        if route.path == "/billing-contacts/remove/{token}":
            for method in route.methods:
                answer = anonymous.request(method, path.replace("{token}", "x"), data={"csrf_token": token})
                shown(answer, 404, 'data-problem="removal_link_invalid"')
                checked += 1
            continue
        for method in route.methods:
            answer = anonymous.request(method, path, data={"csrf_token": token, "email": OWNER, "name": "x"})
            if path == "/portal/sign-out":  # signing out without a session: nothing to end
                shown(answer, 200, 'data-problem="signed_out"')
            else:
                shown(answer, 401, 'data-problem="sign_in_required"')
            checked += 1
    assert checked >= 11


def test_renewly_portal_link_prints_a_link_that_signs_the_member_in(app, renewly, browsers):
    account_id = customer(app)
    made = renewly("portal", "link", str(account_id), "--member", "Owner@Acme.test")
    assert made.code == 0 and made.err == "", made.err
    lines = made.out.splitlines()
    assert lines[0] == f"Sign-in link for {OWNER} (account {account_id}),"
    assert all(len(line) <= 80 for line in lines)
    opened = browsers.new().get(path_of(lines[-1]), follow_redirects=False)
    assert opened.status_code == 303
    refused = renewly("portal", "link", str(account_id), "--member", "nobody@acme.test")
    assert (refused.code, refused.out, refused.err.count("\n")) == (2, "", 1)
