"""Signing in to the support console: e-mail and password (Argon2id), a server-side session in
an HttpOnly, SameSite=Strict cookie, Secure over HTTPS, a new id at every sign-in; one refusal
for an unknown address, a wrong password and a disabled staff member; a throttle per IP address
and per address typed that slows down, never locks out, the real staff member."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select

from renewly.adapters.db.tables import staff_sessions, staff_sign_in_failures
from renewly.console.rules.throttle import FAILURES_BEFORE_WAIT
from renewly.console.staff import disable_staff
from tests.builders import OPERATOR
from tests.web.console.conftest import FINANCE, PASSWORD, SUPPORT, TOKEN_FIELD, shown, sign_in

REFUSED = 'data-error="refused"'
THROTTLED = 'data-error="throttled"'


def session_cookie(response) -> str:
    [cookie] = [value for value in response.headers.get_list("set-cookie") if value.startswith("renewly_console=")]
    return cookie


def test_a_staff_member_signs_in_with_their_password_and_out_again(app, staff, browsers):
    browser = browsers.new()
    answer = sign_in(browser, "Sam@Renewly.example", PASSWORD)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/")
    cookie = session_cookie(answer)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie and "Secure" in cookie
    shown(browser.get("/console/"), 200, "Sam Support")
    # Only the SHA-256 of the session id is stored.
    with app.engine.connect() as conn:
        assert conn.execute(select(staff_sessions.c.secret_hash)).scalar_one() == hashlib.sha256(
            browser.cookies["renewly_console"].encode()).hexdigest()
    token = browser.get("/console/").text.split('name="csrf_token" value="')[1].split('"')[0]
    out = browser.post("/console/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
    gone = browser.get("/console/", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/console/sign-in")


def test_the_cookie_is_not_secure_over_plain_http(app, staff, browsers):
    cookie = session_cookie(sign_in(browsers.new("http://localhost"), SUPPORT, PASSWORD))
    assert "HttpOnly" in cookie and "Secure" not in cookie


def test_a_wrong_password_an_unknown_address_and_a_disabled_account_get_the_same_answer(app, staff, browsers):
    disable_staff(app, FINANCE, actor=OPERATOR)
    answers = [sign_in(browsers.new(client=(f"198.51.100.{n}", 1)), email, password) for n, (email, password) in
               enumerate([(SUPPORT, PASSWORD + "!"), ("nobody@renewly.example", PASSWORD), (FINANCE, PASSWORD)])]
    pages = [shown(answer, 401, REFUSED) for answer in answers]
    assert "do not match an active staff account" in pages[0]
    # The pages differ only by the address typed (kept in its field) and each browser's CSRF token.
    assert len({TOKEN_FIELD.sub("", page).replace("nobody@renewly.example", SUPPORT).replace(FINANCE, SUPPORT)
                for page in pages}) == 1
    assert all("set-cookie" not in answer.headers or "renewly_console=" not in answer.headers["set-cookie"]
               for answer in answers)


def test_a_new_session_id_at_every_sign_in_and_the_old_one_ends(app, staff, browsers):
    browser = browsers.signed_in(SUPPORT)
    before = browser.cookies["renewly_console"]
    browsers.signed_in(FINANCE, browser)
    after = browser.cookies["renewly_console"]
    assert after != before
    shown(browser.get("/console/"), 200, "Fiona Finance")
    stale = browsers.new()
    stale.cookies.set("renewly_console", before, domain="billing.renewly.example", path="/console")
    assert stale.get("/console/", follow_redirects=False).headers["location"] == "/console/sign-in"


def test_a_session_ends_when_its_staff_member_is_disabled_and_when_idle(app, staff, browsers):
    support, finance = browsers.signed_in(SUPPORT), browsers.signed_in(FINANCE)
    disable_staff(app, SUPPORT, actor=OPERATOR)
    assert support.get("/console/", follow_redirects=False).status_code == 303
    assert finance.get("/console/", follow_redirects=False).status_code == 200
    app.test_clock.set(app.clock.now() + timedelta(minutes=app.settings.portal.session_idle_minutes))
    assert finance.get("/console/", follow_redirects=False).status_code == 303


def test_the_throttle_holds_per_account_across_addresses_and_lets_the_user_in_after_the_wait(app, staff, browsers):
    for attempt in range(FAILURES_BEFORE_WAIT):  # from five addresses: the per-IP count never reaches 5
        shown(sign_in(browsers.new(client=(f"198.51.100.{attempt}", 1)), SUPPORT, "guess-" + "x" * 12), 401, REFUSED)
    # Now even the right password, from a fresh address, waits; the page says until when.
    page = shown(sign_in(browsers.new(), SUPPORT, PASSWORD), 429, THROTTLED)
    assert "Try again after 2026-01-01 00:01 UTC" in page
    answer = sign_in(browsers.new(), SUPPORT, PASSWORD)
    assert answer.headers["retry-after"] == "60"
    # Another staff member is not slowed down by it.
    browsers.signed_in(FINANCE)
    # A try while waiting is not counted: the wait does not grow by trying.
    with app.engine.connect() as conn:
        counted = conn.execute(select(func.count()).select_from(staff_sign_in_failures)
                               .where(staff_sign_in_failures.c.key == f"email:{SUPPORT}")).scalar_one()
    assert counted == FAILURES_BEFORE_WAIT
    app.test_clock.set(app.clock.now() + timedelta(minutes=1))
    browsers.signed_in(SUPPORT)  # after the wait: in, and the count starts again
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(staff_sign_in_failures)
                            .where(staff_sign_in_failures.c.key == f"email:{SUPPORT}")).scalar_one() == 0


def test_the_throttle_holds_per_ip_address_across_accounts_with_a_growing_wait(app, staff, browsers):
    attacker = browsers.new(client=("192.0.2.66", 4444))
    for attempt in range(FAILURES_BEFORE_WAIT):  # five addresses typed: no per-account count reaches 5
        shown(sign_in(attacker, f"guess{attempt}@renewly.example", PASSWORD), 401, REFUSED)
    shown(sign_in(attacker, SUPPORT, PASSWORD), 429, THROTTLED)  # even a right password, from there
    browsers.signed_in(SUPPORT)  # from another address: in
    app.test_clock.set(app.clock.now() + timedelta(minutes=1))
    shown(sign_in(attacker, "guess5@renewly.example", PASSWORD), 401, REFUSED)  # the sixth: 2 minutes now
    app.test_clock.set(app.clock.now() + timedelta(minutes=1, seconds=59))
    shown(sign_in(attacker, SUPPORT, PASSWORD), 429, THROTTLED)
    app.test_clock.set(app.clock.now() + timedelta(seconds=1))
    assert sign_in(attacker, SUPPORT, PASSWORD).status_code == 303
