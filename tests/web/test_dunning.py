"""Dunning through the API: the banner a member sees, by role and day (R8.3, R8.4), in the
account's language; the account's open case; the preview of what comes next (R8.8).

Accounts, members and the failed renewal are made through the use cases (tests/builders.py);
time passes on the test clock through the scheduler, batches included, as `renewly clock
advance` moves it. Day 0 is 2026-01-01, the renewal the card declines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from renewly.accounts.accounts import add_member
from renewly.dunning.preview import preview_account
from renewly.scheduler import advance
from tests.builders import GOOD_CARD, OPERATOR, subscribed, team_plan
from tests.web.conftest import problem, statements_sent

DECLINES = "4000000000000341"  # the card saves fine; every charge is declined
OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
DAY_4_TEXT = "Your last payment failed. The account owner must update the card to avoid cancellation."
DAY_21_TEXT = ("This account will be cancelled on Jan 30, 2026 unless its invoice is paid. Ask the account owner to "
               "update the card.")


def to_day(app, day: int) -> None:
    """The test clock to noon (UTC) of `day` after day 0, every batch due on the way run."""
    advance(app, datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=day) - app.clock.now())


def declined(app, *, plan: str, owner: str = OWNER, locale: str = "en", name: str = "Acme") -> int:
    """An account whose renewal on day 0 is declined, with an owner, an admin and an agent."""
    account_id, _ = subscribed(app, card=DECLINES, plan=plan, owner=owner, locale=locale, name=name)
    domain = owner.partition("@")[2]
    add_member(app, account_id, email=f"admin@{domain}", role="admin", actor=OPERATOR)
    add_member(app, account_id, email=f"agent@{domain}", role="agent", actor=OPERATOR)
    return account_id


def banner(api, account_id: int, member: str) -> dict | None:
    answer = api.get(f"/v1/accounts/{account_id}/banner", params={"member": member})
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["object"], shown["account_id"], shown["member"]) == ("member_banner", account_id, member.lower())
    return shown["banner"]


# -- the banner a member sees (R8.3, R8.4) ---------------------------------------------------------------

def test_r8_3_r8_4_r12_the_banner_by_role_and_day_in_the_account_s_language(app, api):
    """Admins from day 4, agents from day 21; a French account's members read it in French."""
    plan = team_plan(app)
    account_id = declined(app, plan=plan)
    french = declined(app, plan=plan, owner="owner@martin.example", locale="fr", name="Martin")
    to_day(app, 0)
    assert [banner(api, account_id, email) for email in (OWNER, ADMIN, AGENT)] == [None, None, None]

    to_day(app, 4)
    payment_failed = {"code": "owner_and_admins", "severity": "warning", "name": "payment failed warning",
                      "text": DAY_4_TEXT}
    assert banner(api, account_id, OWNER) == payment_failed
    assert banner(api, account_id, ADMIN) == payment_failed
    assert banner(api, account_id, AGENT) is None
    agent = api.get(f"/v1/accounts/{account_id}/banner", params={"member": "Agent@Acme.test"}).json()
    assert (agent["member"], agent["role"], agent["locale"], agent["banner"]) == (AGENT, "agent", "en", None)
    assert banner(api, french, "admin@martin.example") == {
        "code": "owner_and_admins", "severity": "warning", "name": "avertissement de paiement refusé",
        "text": "Votre dernier paiement a échoué. Le propriétaire du compte doit mettre à jour la carte pour éviter "
                "la résiliation."}
    assert banner(api, french, "agent@martin.example") is None

    to_day(app, 21)
    cancellation = {"code": "everyone", "severity": "critical", "name": "cancellation warning", "text": DAY_21_TEXT}
    assert [banner(api, account_id, email) for email in (OWNER, ADMIN, AGENT)] == [cancellation] * 3
    in_french = banner(api, french, "agent@martin.example")
    assert (in_french["code"], in_french["name"]) == ("everyone", "avertissement d'annulation")
    assert in_french["text"].startswith("Ce compte sera résilié le 30 ")



def test_the_banner_is_read_in_one_statement_and_an_open_case_s_invoices_in_one_more(app, api, trust_clock):
    """The host product asks it for every page a member opens: the account, the member, a running
    reactivation and the open case come in one round trip; the unpaid invoices the text names, in
    a second, only while a case is open. (The key, trusted after its first request, asks none.)"""
    plan = team_plan(app)
    account_id = declined(app, plan=plan)
    to_day(app, 4)
    banner(api, account_id, OWNER)
    with statements_sent(app) as sent:
        assert banner(api, account_id, ADMIN)["code"] == "owner_and_admins"
    assert len(sent) == 2, sent
    settled = subscribed(app, plan=plan, owner="owner@paying.test", name="Paying")[0]
    with statements_sent(app) as sent:
        assert banner(api, settled, "owner@paying.test") is None
    assert len(sent) == 1, sent

def test_a_banner_refused(app, api):
    account_id, _ = subscribed(app, card=GOOD_CARD)
    problem(api.get("/v1/accounts/2/banner", params={"member": OWNER}), 404, "unknown_account")
    problem(api.get(f"/v1/accounts/{account_id}/banner", params={"member": "nobody@acme.test"}), 404,
            "unknown_member")
    problem(api.get(f"/v1/accounts/{account_id}/banner", params={"member": "not an e-mail"}), 422, "invalid_input")
    problem(api.get(f"/v1/accounts/{account_id}/banner", params={"member": "a@b.c" + "x" * 320}), 422,
            "invalid_input")
    problem(api.get(f"/v1/accounts/{account_id}/banner"), 422, "invalid_input")
    problem(api.get("/v1/accounts/0/banner", params={"member": OWNER}), 422, "invalid_input")
    problem(api.get(f"/v1/accounts/{2**63}/banner", params={"member": OWNER}), 422, "invalid_input")


# -- the open case and the preview (R8, R8.8) -------------------------------------------------------------

def test_r8_the_open_case_says_since_when_its_steps_its_invoices_and_the_next_step(app, api):
    plan = team_plan(app)
    account_id = declined(app, plan=plan)
    healthy, _ = subscribed(app, card=GOOD_CARD, plan=plan, owner="owner@globex.test", name="Globex")
    to_day(app, 4)

    found = api.get(f"/v1/accounts/{account_id}/dunning").json()
    assert {key: found[key] for key in ("object", "account_id", "status", "banner")} == {
        "object": "dunning", "account_id": account_id, "status": "past_due", "banner": "owner_and_admins"}
    case = found["case"]
    assert (case["object"], case["since"], case["timezone"], case["last_step"], case["awaiting_step"],
            case["warned_on"]) == ("dunning_case", "2026-01-01", "UTC", "payment_failed_3", None, None)
    assert [(step["name"], step["day"], step["taken_on"], step["email"], step["charge"]) for step in case["steps"]] == [
        ("payment_failed_1", 0, "2026-01-01", "payment_failed_1", False),  # the renewal's own charge
        ("payment_failed_2", 2, "2026-01-03", "payment_failed_2", True),
        ("payment_failed_3", 4, "2026-01-05", "payment_failed_3", True)]
    [invoice] = case["invoices"]
    assert {key: invoice[key] for key in ("amount_due", "currency", "last_attempt_on", "decline_code",
                                          "charge_pending")} == {
        "amount_due": 6840,  # 3 seats of 19.00, and 20 % VAT (the buyer is in France)
        "currency": "USD", "last_attempt_on": "2026-01-05", "decline_code": "card_declined",
        "charge_pending": False}
    assert invoice["number"].startswith("2026-")
    assert case["next_step"] == {"day": 21, "date": "2026-01-22", "step": "suspension_warning", "actions": [
        "charge attempt", "e-mail 'suspension_warning' to billing contacts if it fails", "banner for every member"]}

    # The preview is what the command line's `renewly preview` shows, and its first day the case's next step.
    preview = api.get(f"/v1/accounts/{account_id}/dunning/preview").json()
    expected = preview_account(app, account_id)
    assert (preview["object"], preview["today"], preview["status"], preview["policy_version"]) == (
        "dunning_preview", "2026-01-05", "past_due", expected.policy_version)
    [(about, days)] = expected.cases
    assert preview["cases"] == [{"about": about, "days": [
        {"day": day.day, "date": day.date.isoformat(), "step": day.step, "actions": list(day.actions)}
        for day in days]}]
    assert preview["cases"][0]["days"][0] == case["next_step"]
    assert [day["step"] for day in preview["cases"][0]["days"]] == ["suspension_warning", "account_cancelled",
                                                                 None]  # None: the deletion

    # An account that pays owes nothing overdue: no case, and its preview is what a failed renewal would start.
    assert api.get(f"/v1/accounts/{healthy}/dunning").json() == {
        "object": "dunning", "account_id": healthy, "status": "active", "banner": "none", "case": None}
    [hypothetical] = api.get(f"/v1/accounts/{healthy}/dunning/preview").json()["cases"]
    assert hypothetical["about"] == "if the payment of the renewal on 2026-02-01 fails"


def test_the_case_and_the_preview_refused(api):
    for path in ("dunning", "dunning/preview"):
        problem(api.get(f"/v1/accounts/1/{path}"), 404, "unknown_account")
        problem(api.get(f"/v1/accounts/0/{path}"), 422, "invalid_input")
        problem(api.get(f"/v1/accounts/{2**63}/{path}"), 422, "invalid_input")
        problem(api.get(f"/v1/accounts/one/{path}"), 422, "invalid_input")
