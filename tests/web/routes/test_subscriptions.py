"""`/v1/subscriptions`: started (first invoice at once), seats changed (prorated), cancelled."""

from __future__ import annotations

from datetime import timedelta

from renewly.billing.invoices import list_invoices
from renewly.scheduler import advance
from tests.builders import customer, team_plan
from tests.web.conftest import problem


def started(app, client, **body) -> dict:
    account_id = customer(app)
    team_plan(app)
    response = client.post("/v1/subscriptions", json={"account_id": account_id, "plan": "team", "seats": 3, **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_subscription_starts_with_its_first_invoice(app, client):
    subscription = started(app, client)
    assert subscription == {**subscription, "object": "subscription", "id": 1, "account_id": 1, "plan": "team",
                            "seats": 3, "status": "active", "anchor_date": "2026-01-01",
                            "current_period_start": "2026-01-01", "current_period_end": "2026-02-01"}
    assert [invoice["total"] for invoice in list_invoices(app, 1)] == [6840]  # 3 × 19.00 + 20 % (FR)
    assert client.get("/v1/subscriptions/1").json() == subscription
    assert client.get("/v1/subscriptions", params={"account_id": 1}).json()["data"] == [subscription]
    assert client.get("/v1/subscriptions", params={"account_id": 2}).json()["data"] == []


def test_a_subscription_refused(app, client):
    account_id = customer(app)
    team_plan(app)
    team_plan(app, code="euro", currency="EUR")
    body = {"account_id": account_id, "plan": "team"}
    problem(client.post("/v1/subscriptions", json={**body, "plan": "nope"}), 404, "unknown_plan")
    problem(client.post("/v1/subscriptions", json={**body, "account_id": 99}), 404, "unknown_account")
    problem(client.post("/v1/subscriptions", json={**body, "plan": "euro"}), 400, "currency_mismatch")
    problem(client.post("/v1/subscriptions", json={**body, "seats": 0}), 422, "invalid_input")
    problem(client.post("/v1/subscriptions", json={**body, "seats": 1_000_001}), 422, "invalid_input")
    problem(client.post("/v1/subscriptions", json={**body, "start": "2020-01-01"}), 400, "start_in_the_past")
    problem(client.post("/v1/subscriptions", json={**body, "start": "2026-13-01"}), 422, "invalid_input")
    problem(client.get("/v1/subscriptions/5"), 404, "unknown_subscription")
    assert client.get("/v1/subscriptions").json()["data"] == []


def test_seats_change_with_the_proration_said(app, client):
    started(app, client)
    advance(app, timedelta(days=15))
    changed = client.post("/v1/subscriptions/1/change_seats", json={"seats": 5})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**changed.json(), "object": "seat_change", "prorated_amount": 1961, "currency": "USD"}
    assert changed.json()["subscription"]["seats"] == 5
    problem(client.post("/v1/subscriptions/1/change_seats", json={"seats": 5}), 400, "seats_unchanged")
    problem(client.post("/v1/subscriptions/7/change_seats", json={"seats": 5}), 404, "unknown_subscription")


def test_a_cancelled_subscription_says_what_will_never_be_invoiced_and_changes_no_more(app, client):
    started(app, client)
    advance(app, timedelta(days=15))
    client.post("/v1/subscriptions/1/change_seats", json={"seats": 4})
    cancelled = client.post("/v1/subscriptions/1/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {**cancelled.json(), "object": "subscription_cancellation",
                                "prorations_not_invoiced": 981, "currency": "USD"}  # 19.00 × 16/31
    assert cancelled.json()["subscription"]["status"] == "cancelled"
    problem(client.post("/v1/subscriptions/1/cancel"), 403, "subscription_inactive")
    problem(client.post("/v1/subscriptions/1/change_seats", json={"seats": 2}), 403, "subscription_inactive")
    problem(client.post("/v1/subscriptions/2/cancel"), 404, "unknown_subscription")
