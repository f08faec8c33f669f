"""The R8 story through the API alone (issue 13): a host product that speaks only HTTP creates a
plan, an account with an owner, an admin and an agent, attaches a card token whose charges are
declined, subscribes, registers a webhook endpoint, and moves the test clock day by day through
the R8 table. Each day it reads, through the API, the banner each member sees, the account's
status and its dunning case; at the end the events, the webhooks its receiver got, and the
account cancelled on day 29, reactivated by support (R9.2), paid with a new card and active again
(R9.3, R11).

The dates are those tests/dunning/test_r8_schedule.py reads through the use cases (day 0 is
2026-01-01, the subscription's start; its invoice's charge is declined): no banner on days 0 to 3,
owner and admins from day 4 (R8.3), everyone from day 21 (R8.4), the cancelled page from day 29
(R8.5); a charge on days 0, 2, 4 and 21, none on day 29.

The one thing not asked of Renewly is the card token: the gateway's card form gives it to the
host product's page (here the simulated gateway's `tokenize`, as tests/web/test_payment_methods.py).
"""

from __future__ import annotations

from datetime import date, datetime

from standardwebhooks import Webhook

from tests.web.conftest import problem

DECLINES = "4000000000000341"  # the card check passes, every charge is declined
GOOD_CARD = "4242424242424242"
DAY0 = date(2026, 1, 1)
LAST_DAY = 35
MEMBERS = {"owner": "owner@acme.test", "admin": "admin@acme.test", "agent": "agent@acme.test"}
SUPPORT_REASON = "the owner called: a new card is on its way"



def day_of(instant: str) -> int:
    return (datetime.fromisoformat(instant).date() - DAY0).days


def created(answer) -> dict:
    assert answer.status_code == 201, answer.text
    return answer.json()


def ok(answer) -> dict:
    assert answer.status_code == 200, answer.text
    return answer.json()


def card_token(app, number: str) -> str:
    """What the gateway's card form gives the host product's page: a token, never the number."""
    return app.gateway.tokenize(number, 12, 2035)


def advance(api, **moved: int) -> dict:
    return ok(api.post("/v1/test_clock/advance", json=moved))


def banners(api, account_id: int) -> dict[str, str]:
    """The banner code each member sees now ("none": no banner)."""
    seen = {}
    for role, email in MEMBERS.items():
        shown = ok(api.get(f"/v1/accounts/{account_id}/banner", params={"member": email}))
        assert shown["role"] == role
        seen[role] = "none" if shown["banner"] is None else shown["banner"]["code"]
    return seen


def events(api, account_id: int) -> list[dict]:
    """Every event of the account, oldest first, a page at a time."""
    found: list[dict] = []
    cursor = None
    while True:
        page = ok(api.get("/v1/events", params={"account_id": account_id, "limit": 100,
                                                **({"cursor": cursor} if cursor else {})}))
        found += page["data"]
        if not page["has_more"]:
            return found
        cursor = page["next_cursor"]


def test_r8_r9_the_whole_story_through_the_api_alone(app, api, receiver):
    hook = created(api.post("/v1/webhook_endpoints", json={
        "url": f"{receiver.url}/renewly", "event_types": ["account.*", "payment.*", "dunning.*",
                                                          "member.banner_changed", "reactivation.*"]}))
    assert ok(api.get("/v1/test_clock"))["now"] == "2026-01-01T00:00:00Z"
    created(api.post("/v1/plans", json={"code": "team", "name": "Team", "interval": "month", "unit_amount": 1900,
                                        "currency": "USD"}))
    account = created(api.post("/v1/accounts", json={"name": "Acme", "owner_email": MEMBERS["owner"],
                                                     "country": "FR"}))
    account_id = account["id"]
    for role in ("admin", "agent"):
        created(api.post(f"/v1/accounts/{account_id}/members", json={"email": MEMBERS[role], "role": role}))
    assert [(member["email"], member["role"]) for member in ok(api.get(f"/v1/accounts/{account_id}/members"))[
        "data"]] == [(email, role) for role, email in MEMBERS.items()]
    card = created(api.post(f"/v1/accounts/{account_id}/payment_method", json={
        "token": card_token(app, DECLINES), "acting_member": MEMBERS["owner"]}))
    assert (card["last4"], card["added_by"]) == ("0341", MEMBERS["owner"])
    subscription = created(api.post("/v1/subscriptions", json={"account_id": account_id, "plan": "team",
                                                               "seats": 3}))
    assert (subscription["anchor_date"], subscription["current_period_start"]) == ("2026-01-01", "2026-01-01")

    # Day by day at noon (UTC, the account's zone), every batch due on the way run by the advance.
    seen: dict[str, list[str]] = {role: [] for role in MEMBERS}
    statuses, last_steps = [], []
    advance(api, hours=12)
    for day in range(LAST_DAY + 1):
        if day:
            assert advance(api, days=1)["now"] == f"{date.fromordinal(DAY0.toordinal() + day)}T12:00:00Z"
        for role, code in banners(api, account_id).items():
            seen[role].append(code)
        statuses.append(ok(api.get(f"/v1/accounts/{account_id}"))["status"])
        dunning = ok(api.get(f"/v1/accounts/{account_id}/dunning"))
        assert dunning["status"] == statuses[-1]
        last_steps.append(dunning["case"]["last_step"] if dunning["case"] else None)
        if day == 21:
            case = dunning["case"]
            assert [(step["name"], step["day"], step["taken_on"]) for step in case["steps"]] == [
                ("payment_failed_1", 0, "2026-01-01"), ("payment_failed_2", 2, "2026-01-03"),
                ("payment_failed_3", 4, "2026-01-05"), ("suspension_warning", 21, "2026-01-22")]
            assert case["next_step"]["step"] == "account_cancelled" and case["next_step"]["date"] == "2026-01-30"
            [chased] = case["invoices"]
            assert (chased["amount_due"], chased["currency"], chased["last_attempt_on"]) == (6840, "USD",
                                                                                            "2026-01-22")

    # R8.1 to R8.5: the banners each role saw, the account's status, the case's last step, by day.
    for role in MEMBERS:
        from_day_4 = "owner_and_admins" if role in ("owner", "admin") else "none"
        assert seen[role] == ["none"] * 4 + [from_day_4] * 17 + ["everyone"] * 8 + ["cancelled"] * (LAST_DAY - 28)
    assert statuses == ["past_due"] * 29 + ["cancelled"] * (LAST_DAY - 28)
    assert last_steps[:29] == (["payment_failed_1"] * 2 + ["payment_failed_2"] * 2 + ["payment_failed_3"] * 17
                               + ["suspension_warning"] * 8)

    # What the events say happened, and on which day: each step once, a decline on days 0, 2, 4
    # and 21 (none on day 29), the cancellation on day 29.
    story = events(api, account_id)
    def days_of(kind: str) -> list[int]:
        return [day_of(event["created_at"]) for event in story if event["type"] == kind]

    assert days_of("payment.declined") == [0, 2, 4, 21]
    assert [(day_of(event["created_at"]), step) for event in story if event["type"] == "dunning.step"
            for step in event["data"]["steps"]] == [
        (0, "payment_failed_1"), (2, "payment_failed_2"), (4, "payment_failed_3"), (21, "suspension_warning"),
        (29, "account_cancelled")]
    assert days_of("account.cancelled") == [29]
    def everyone(banner: str) -> dict[str, str]:
        return dict.fromkeys(MEMBERS, banner)

    # member.banner_changed: what each role sees from that day, for the host product's dashboard.
    assert [(day_of(event["created_at"]), event["data"]["status"], event["data"]["banners"]) for event in story
            if event["type"] == "member.banner_changed"] == [
        (0, "past_due", everyone("none")), (4, "past_due", {**everyone("owner_and_admins"), "agent": "none"}),
        (21, "past_due", everyone("everyone")), (29, "cancelled", everyone("cancelled"))]

    # R9.1: cancelled, the dashboard says so to everyone; R9.2: support reactivates through the API.
    reactivated = ok(api.post(f"/v1/accounts/{account_id}/reactivate", json={"reason": SUPPORT_REASON}))
    assert (reactivated["last_day"], reactivated["timezone"]) == ("2026-02-12", "UTC")  # day 35 and 7 days after
    assert banners(api, account_id) == {"owner": "reactivated", "admin": "cancelled", "agent": "cancelled"}
    problem(api.post(f"/v1/accounts/{account_id}/payment_method", json={
        "token": card_token(app, GOOD_CARD), "acting_member": MEMBERS["admin"]}), 403, "owner_required")
    saved = created(api.post(f"/v1/accounts/{account_id}/payment_method", json={
        "token": card_token(app, GOOD_CARD), "acting_member": MEMBERS["owner"]}))
    assert (saved["last4"], saved["retries_requested"]) == ("4242", 1)

    # R7.1, R9.3: the next payment batch (hourly) charges the new card; the account is active again.
    advance(api, hours=1)
    assert ok(api.get(f"/v1/accounts/{account_id}"))["status"] == "active"
    assert banners(api, account_id) == {"owner": "none", "admin": "none", "agent": "none"}
    assert ok(api.get(f"/v1/accounts/{account_id}/dunning"))["case"] is None
    # The unpaid January invoice is paid; the renewal of 1 February, held while the account was
    # cancelled, is issued once it is active again, and paid too.
    assert [(invoice["period_start"], invoice["issue_date"], invoice["status"], invoice["total"]) for invoice in ok(
        api.get("/v1/invoices", params={"account_id": account_id}))["data"]] == [
        ("2026-01-01", "2026-01-01", "paid", 6840), ("2026-02-01", "2026-02-05", "paid", 6840)]
    assert [event["type"] for event in events(api, account_id)[len(story):]] == [
        "reactivation.granted", "member.banner_changed", "payment_method.updated", "payment.succeeded",
        "dunning.recovered", "account.reactivated", "member.banner_changed", "invoice.issued", "payment.succeeded"]

    # Webhooks: the batch on the way delivered each event the endpoint asked for, signed, once.
    advance(api, hours=1)
    deliveries = ok(api.get(f"/v1/webhook_endpoints/{hook['id']}"))["deliveries"]
    wanted = [event for event in events(api, account_id) if event["type"].split(".")[0] in (
        "account", "payment", "dunning", "reactivation") or event["type"] == "member.banner_changed"]
    assert deliveries == {"pending": 0, "replay": 0, "delivered": len(wanted), "failed": 0}
    # Sent in parallel, they arrive in any order: each once, under its event's webhook-id.
    received = sorted(receiver.received("/renewly"), key=lambda request: int(request.webhook_id.removeprefix("msg_")))
    assert [request.webhook_id for request in received] == [event["webhook_id"] for event in wanted]
    verified = [Webhook(hook["secret"]).verify(request.body, request.headers) for request in received]
    assert [(sent["type"], sent["data"]) for sent in verified] == [(event["type"], event["data"]) for event in wanted]
    assert [sent["data"]["account_id"] for sent in verified if sent["type"] == "account.cancelled"] == [account_id]
