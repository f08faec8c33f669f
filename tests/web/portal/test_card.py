"""R5.4, R6.1, R7.1, R9.2 the owner changes the card through the payment gateway's own card form
(the simulated gateway's, at /gateway/sim): the browser types the number there, the gateway sends
it back to the portal with a token only; the number never reaches Renewly's handlers, logs or
database. Only the owner; during a temporary reactivation too, and the payment reactivates."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from renewly.adapters.db.tables import accounts, cards
from renewly.dunning.reactivation import grant_reactivation
from renewly.scheduler import advance
from tests.builders import OPERATOR, subscribed, team_plan
from tests.payment_builders import every_stored_value
from tests.web.portal.conftest import shown
from tests.web.portal.test_pages import ADMIN, AGENT, OWNER, team
from tests.web.test_dunning import declined, to_day

PAN = "5555555555554444"  # the simulated gateway's Mastercard that authorizes
DECLINED = "4000000000000002"
FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def open_card_form(browser) -> tuple[str, dict[str, str]]:
    """From the portal's card page, the gateway's form: its address and hidden fields."""
    page = shown(browser.get("/portal/card"), 200, "data-card-form")
    href = unescape(re.search(r'href="([^"]+)" data-card-form', page).group(1))
    assert href.startswith("/gateway/sim/card-form?")
    form = browser.get(href)
    assert form.status_code == 200 and 'name="number"' in form.text, form.text
    assert "script" not in form.headers["content-security-policy"]
    return urlsplit(href).path, {name: unescape(value) for name, value in FIELD.findall(form.text)}


def type_card(browser, number: str, month: str = "12", year: str = "2035"):
    """The person fills the gateway's form and sends it; the gateway's answer (a redirect)."""
    action, hidden = open_card_form(browser)
    return browser.post(action, data={**hidden, "number": number, "exp_month": month, "exp_year": year},
                        follow_redirects=False)


def active_card(app, account_id: int) -> str | None:
    with app.engine.connect() as conn:
        return conn.execute(select(cards.c.last4).where(cards.c.account_id == account_id,
                                                        cards.c.status == "active")).scalar()


def test_r5_4_the_owner_changes_the_card_on_the_gateway_s_form_and_the_number_never_reaches_renewly(
        app, browsers, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    account_id, _ = subscribed(app, card=None)  # its first invoice is unpaid
    owner = browsers.signed_in(account_id, OWNER)
    seen_by_renewly: list[str] = []

    def record(request) -> None:  # every request the browser sends that is not to the gateway's form
        if not request.url.path.startswith("/gateway/sim/"):
            seen_by_renewly.append(f"{request.url} {request.headers} {request.read().decode('latin-1')}")

    owner.event_hooks["request"] = [record]
    back = type_card(owner, " ".join([PAN[:4], PAN[4:8], PAN[8:12], PAN[12:]]))

    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith("/portal/card/return?") and PAN not in digits(location)
    assert parse_qs(urlsplit(location).query)["token"][0].startswith("pm_sim_")
    saved = owner.get(location, follow_redirects=False)
    assert (saved.status_code, saved.headers["location"]) == (303, "/portal/card?saved=1&retries=1")
    page = shown(owner.get(saved.headers["location"]), 200, 'data-saved="card"')
    assert 'data-card="4444"' in page and "mastercard ending in 4444, expires 12/2035" in page
    assert "Unpaid invoices (1) will be charged to it at the next payment run." in page
    assert active_card(app, account_id) == "4444"

    assert seen_by_renewly and [seen for seen in seen_by_renewly if PAN in digits(seen)] == []
    assert [cell for cell in every_stored_value(app) if PAN in digits(cell[2])] == []
    logged = capsys.readouterr()
    assert PAN not in digits(logged.out + logged.err) and PAN not in digits(caplog.text)


def test_r6_1_only_the_owner_reaches_the_card_page_and_its_return(app, browsers):
    account_id = team(app)
    owner = browsers.signed_in(account_id, OWNER)
    back = type_card(owner, PAN)  # a token and a state made for the owner, not yet used
    for member in (ADMIN, AGENT):
        browser = browsers.signed_in(account_id, member)
        shown(browser.get("/portal/card"), 403, 'data-problem="owner_only"')
        shown(browser.get(back.headers["location"]), 403, 'data-problem="owner_only"')
    assert active_card(app, account_id) == "4242"


def test_a_token_brought_back_by_another_session_or_too_late_changes_nothing(app, browsers):
    account_id, _ = subscribed(app)
    back = type_card(browsers.signed_in(account_id, OWNER), PAN).headers["location"]
    token = parse_qs(urlsplit(back).query)["token"][0]
    other_browser = browsers.signed_in(account_id, OWNER)  # the same owner, another session
    shown(other_browser.get(back), 400, 'data-error="state"')
    shown(other_browser.get(f"/portal/card/return?token={token}"), 400, 'data-error="state"')
    shown(other_browser.get(f"/portal/card/return?state=forged&token={token}"), 400, 'data-error="state"')
    assert active_card(app, account_id) == "4242"

    owner = browsers.signed_in(account_id, OWNER)
    late = type_card(owner, PAN).headers["location"]
    for _ in range(2):  # 32 minutes later, the session kept alive meanwhile
        app.test_clock.set(app.clock.now() + timedelta(minutes=16))
        shown(owner.get("/portal/card"), 200, "data-card-form")
    shown(owner.get(late), 400, 'data-error="state"')
    assert active_card(app, account_id) == "4242"


def test_r5_1_a_declined_card_is_not_saved_and_the_page_says_so(app, browsers):
    account_id, _ = subscribed(app)
    owner = browsers.signed_in(account_id, OWNER)
    back = type_card(owner, DECLINED)
    page = shown(owner.get(back.headers["location"]), 400, 'data-error="declined"')
    assert "The card was declined: nothing was saved." in page and 'data-card="4242"' in page
    assert active_card(app, account_id) == "4242"


def test_the_gateway_s_form_refuses_a_wrong_number_without_repeating_it_nor_leaving(app, browsers):
    account_id, _ = subscribed(app)
    owner = browsers.signed_in(account_id, OWNER)
    wrong = "4242424242424241"  # fails the Luhn check
    refused = type_card(owner, wrong)
    assert refused.status_code == 400 and 'data-error="number"' in refused.text
    assert wrong not in digits(refused.text)
    assert type_card(owner, PAN, month="13").status_code == 400
    assert active_card(app, account_id) == "4242"


def test_the_gateway_s_form_sends_back_only_to_this_site(app, browsers):
    browser = browsers.new()
    for elsewhere in ("https://evil.example/steal", "//evil.example/steal", "/\\evil.example", ""):
        answer = browser.get("/gateway/sim/card-form", params={"return_to": elsewhere, "state": "s"})
        assert answer.status_code == 400, elsewhere
        posted = browser.post("/gateway/sim/card-form", data={"return_to": elsewhere, "state": "s", "number": PAN,
                                                              "exp_month": "12", "exp_year": "2035"},
                              follow_redirects=False)
        assert posted.status_code == 400 and "location" not in posted.headers, elsewhere


def test_r9_2_during_a_reactivation_the_owner_changes_the_card_and_the_payment_reactivates(app, browsers):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 29)
    grant_reactivation(app, account_id, days=None, reason="asked by phone", actor=OPERATOR)
    for member in (ADMIN, AGENT):
        shown(browsers.signed_in(account_id, member).get("/portal/card"), 403, 'data-problem="cancelled"')
    owner = browsers.signed_in(account_id, OWNER)
    saved = owner.get(type_card(owner, PAN).headers["location"], follow_redirects=False)
    assert saved.headers["location"].startswith("/portal/card?saved=1&retries=")

    advance(app, datetime(2026, 1, 31, 14, tzinfo=UTC) - app.clock.now())  # the next payment batch (13:00)

    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.status).where(accounts.c.id == account_id)).scalar() == "active"
    home = shown(browsers.signed_in(account_id, OWNER).get("/portal/"), 200, "Plan and seats")  # a day later
    assert 'data-banner="reactivated"' not in home and 'data-card="4444"' in home
    shown(browsers.signed_in(account_id, ADMIN).get("/portal/"), 200, "Only the account owner")


def test_r12_1_a_declined_card_is_said_with_the_bank_s_reason_in_the_account_s_language(app, browsers):
    account_id, _ = subscribed(app, locale="fr")
    owner = browsers.signed_in(account_id, OWNER)
    back = type_card(owner, DECLINED)
    page = shown(owner.get(back.headers["location"]), 400, 'data-error="declined"')
    assert "La carte a été refusée : rien n'a été enregistré." in unescape(page)
    assert "Motif donné par la banque : la carte a été refusée par la banque." in unescape(page)
    assert "card declined" not in page and "nothing was saved" not in page
