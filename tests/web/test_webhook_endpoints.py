"""`/v1/webhook_endpoints`, `/v1/webhook_deliveries`, `/v1/webhook_event_types`: endpoints
registered, read, disabled, enabled and deleted through the API, the secret in the answer that
registers one and nowhere else, and an event a use case writes delivered to such an endpoint,
its log read and replayed through the API."""

from __future__ import annotations

from typing import get_args

from standardwebhooks import Webhook

from renewly.web.routes.webhook_endpoints import DeliveryStatus
from renewly.webhooks.delivery import deliver_due
from renewly.webhooks.rules.answers import Status
from renewly.webhooks.rules.events import TYPES
from tests.builders import customer
from tests.web.conftest import problem
from tests.webhooks.receiver import SERVER_ERROR

HOOK = {"url": "https://app.example.com/renewly/webhooks", "event_types": ["account.cancelled", "contact.*"],
        "description": "production"}


def test_an_endpoint_is_registered_its_secret_in_that_answer_only(client):
    created = client.post("/v1/webhook_endpoints", json=HOOK)
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert {key: endpoint[key] for key in ("object", "id", "url", "event_types", "description", "disabled_at",
                                           "deliveries")} == {
        "object": "webhook_endpoint", "id": 1, "url": HOOK["url"], "event_types": ["account.cancelled", "contact.*"],
        "description": "production", "disabled_at": None,
        "deliveries": {"pending": 0, "replay": 0, "delivered": 0, "failed": 0}}
    shown = {key: value for key, value in endpoint.items() if key != "secret"}
    assert client.get("/v1/webhook_endpoints/1").json() == shown
    assert client.get("/v1/webhook_endpoints").json()["data"] == [shown]
    for answer in (client.get("/v1/webhook_endpoints/1"), client.get("/v1/webhook_endpoints"),
                   client.post("/v1/webhook_endpoints/1/disable"), client.post("/v1/webhook_endpoints/1/enable")):
        assert endpoint["secret"] not in answer.text


def test_endpoints_are_listed_oldest_first_page_by_page(client):
    for n in range(3):
        assert client.post("/v1/webhook_endpoints", json={**HOOK, "url": f"https://hooks.test/{n}"}).status_code == 201
    first = client.get("/v1/webhook_endpoints", params={"limit": 2}).json()
    assert [each["id"] for each in first["data"]] == [1, 2] and first["has_more"]
    rest = client.get("/v1/webhook_endpoints", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([each["id"] for each in rest["data"]], rest["has_more"], rest["next_cursor"]) == ([3], False, None)


def test_an_endpoint_is_disabled_enabled_and_deleted(client):
    client.post("/v1/webhook_endpoints", json=HOOK)
    disabled = client.post("/v1/webhook_endpoints/1/disable", json={"reason": "receiver moved"})
    assert disabled.status_code == 200
    assert disabled.json()["disabled_reason"] == "receiver moved" and disabled.json()["disabled_at"] is not None
    problem(client.post("/v1/webhook_endpoints/1/disable"), 403, "endpoint_disabled")
    enabled = client.post("/v1/webhook_endpoints/1/enable")
    assert (enabled.json()["disabled_at"], enabled.json()["disabled_reason"]) == (None, None)
    problem(client.post("/v1/webhook_endpoints/1/enable"), 403, "endpoint_enabled")
    assert client.delete("/v1/webhook_endpoints/1").json() == {"object": "webhook_endpoint", "id": 1, "deleted": True}
    problem(client.get("/v1/webhook_endpoints/1"), 404, "unknown_webhook_endpoint")
    assert client.get("/v1/webhook_endpoints").json()["data"] == []


def test_an_endpoint_refused_at_the_door_or_by_the_rules(client):
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "url": "ftp://hooks.test/"}), 400, "invalid_url")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "url": "https://user:pw@hooks.test/"}), 400,
            "invalid_url")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "event_types": ["account.exploded"]}), 400,
            "unknown_event_type")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "description": "a\x1b[2Jb"}), 400, "invalid_text")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "event_types": []}), 422, "invalid_input")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "url": "https://h.test/" + "a" * 2000}), 422,
            "invalid_input")
    problem(client.post("/v1/webhook_endpoints", json={**HOOK, "secret": "whsec_mine"}), 422, "invalid_input")
    problem(client.post("/v1/webhook_endpoints", json={"url": HOOK["url"]}), 422, "invalid_input")
    assert client.get("/v1/webhook_endpoints").json()["data"] == []  # nothing registered by a refusal


def test_what_does_not_exist_is_404(client):
    for answer in (client.get("/v1/webhook_endpoints/9"), client.post("/v1/webhook_endpoints/9/disable"),
                   client.post("/v1/webhook_endpoints/9/enable"), client.delete("/v1/webhook_endpoints/9"),
                   client.get("/v1/webhook_endpoints/9/deliveries")):
        problem(answer, 404, "unknown_webhook_endpoint")
    problem(client.get("/v1/webhook_deliveries/9"), 404, "unknown_webhook_delivery")
    problem(client.post("/v1/webhook_deliveries/9/replay"), 404, "unknown_webhook_delivery")
    problem(client.get(f"/v1/webhook_endpoints/{2**63}"), 422, "invalid_input")


def test_the_event_types_are_the_public_types(client):
    listed = client.get("/v1/webhook_event_types").json()
    assert listed == {"object": "list", "data": sorted(TYPES), "has_more": False, "next_cursor": None}
    assert set(get_args(DeliveryStatus)) == {status.value for status in Status}


def test_an_event_written_by_a_use_case_reaches_an_endpoint_registered_through_the_api(app, client, receiver):
    endpoint = client.post("/v1/webhook_endpoints", json={"url": f"{receiver.url}/hook",
                                                         "event_types": ["account.*"]}).json()
    receiver.answers = [SERVER_ERROR]  # its first try fails, to show in the log
    account_id = customer(app)  # writes account.created
    deliver_due(app, app.clock.now())

    listed = client.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries").json()
    [delivery] = listed["data"]
    assert (delivery["type"], delivery["account_id"], delivery["status"], delivery["attempt_count"]) == (
        "account.created", account_id, "pending", 1)
    assert client.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", params={"failed": True}).json()[
        "data"] == []
    [tried] = client.get(f"/v1/webhook_deliveries/{delivery['id']}").json()["attempts"]
    assert (tried["http_status"], tried["response_excerpt"], tried["replay"]) == (503, "busy, try later", False)
    assert tried["latency_ms"] >= 0

    replayed = client.post(f"/v1/webhook_deliveries/{delivery['id']}/replay")
    assert (replayed.status_code, replayed.json()["status"]) == (200, "replay")
    deliver_due(app, app.clock.now())
    log = client.get(f"/v1/webhook_deliveries/{delivery['id']}").json()
    assert (log["status"], log["attempt_count"]) == ("delivered", 2)
    assert [(each["http_status"], each["replay"]) for each in log["attempts"]] == [(503, False), (200, True)]
    assert client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()["deliveries"]["delivered"] == 1
    # Both tries verify with the secret the API gave once, under the same webhook-id.
    requests = receiver.received("/hook")
    assert [request.webhook_id for request in requests] == [delivery["webhook_id"]] * 2
    for request in requests:
        sent = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert (sent["type"], sent["data"]["account_id"]) == ("account.created", account_id)


def test_deliveries_are_listed_newest_first_page_by_page(app, client, receiver):
    endpoint = client.post("/v1/webhook_endpoints", json={"url": f"{receiver.url}/hook",
                                                         "event_types": ["account.created"]}).json()
    for n in range(3):
        customer(app, name=f"Acme {n}", owner=f"owner{n}@acme.test")
    deliver_due(app, app.clock.now())
    path = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"
    first = client.get(path, params={"limit": 2}).json()
    rest = client.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [each["id"] for each in first["data"]] == [3, 2] and first["has_more"]
    assert ([each["id"] for each in rest["data"]], rest["has_more"]) == ([1], False)


def test_an_endpoint_s_secret_is_rotated_the_new_one_in_that_answer_only(client):
    endpoint = client.post("/v1/webhook_endpoints", json=HOOK).json()
    rotated = client.post("/v1/webhook_endpoints/1/rotate_secret", json={"overlap_hours": 2})
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != endpoint["secret"]
    assert body["previous_secret_until"] is not None
    shown = client.get("/v1/webhook_endpoints/1")
    assert shown.json()["previous_secret_until"] == body["previous_secret_until"]
    assert body["secret"] not in shown.text and endpoint["secret"] not in shown.text
    assert client.post("/v1/webhook_endpoints/1/rotate_secret").json()["previous_secret_until"] is not None
    assert client.post("/v1/webhook_endpoints/1/rotate_secret",
                       json={"overlap_hours": 0}).json()["previous_secret_until"] is None


def test_rotating_an_unknown_endpoint_or_with_too_long_an_overlap_is_refused(client):
    client.post("/v1/webhook_endpoints", json=HOOK)
    problem(client.post("/v1/webhook_endpoints/9/rotate_secret"), 404, "unknown_webhook_endpoint")
    assert client.post("/v1/webhook_endpoints/1/rotate_secret", json={"overlap_hours": 169}).status_code == 422
    assert client.get("/v1/webhook_endpoints/1").json()["previous_secret_until"] is None
