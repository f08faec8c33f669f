"""`/v1/events`: the outbox's events (not its e-mails), oldest first, by type and account, under
the public types and with the data their webhooks carry (docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from renewly.adapters.db.tables import outbox
from renewly.webhooks.rules.events import message, public_type
from tests.builders import customer, subscribed
from tests.conftest import START
from tests.web.conftest import problem


def written(app) -> list[tuple[int, str, int | None]]:
    """The outbox's rows as (id, topic, account), e-mails included."""
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(outbox.c.id, outbox.c.topic, outbox.c.account_id)
                                                   .order_by(outbox.c.id))]


def test_events_are_the_outboxs_rows_but_its_emails(client, app):
    acme, _ = subscribed(app)
    other = customer(app, name="Other", owner="boss@other.test")
    rows = written(app)
    assert "email" in {topic for _, topic, _ in rows}  # the first invoice's e-mail is no event
    events = client.get("/v1/events", params={"limit": 100}).json()
    assert [(e["id"], e["type"], e["account_id"]) for e in events["data"]] == [
        (row_id, public_type(topic), account) for row_id, topic, account in rows if topic != "email"]
    first = events["data"][0]
    assert first == {"object": "event", "id": first["id"], "webhook_id": f"msg_{first['id']}",
                     "type": "account.created", "account_id": acme, "created_at": first["created_at"],
                     "data": message("account.created", START, acme, first["data"])["data"]}
    assert datetime.fromisoformat(first["created_at"]) == START and first["data"]["account_id"] == acme
    assert client.get(f"/v1/events/{first['id']}").json() == first
    assert [e["type"] for e in client.get("/v1/events", params={"account_id": other}).json()["data"]] == [
        "account.created"]
    issued = client.get("/v1/events", params={"type": "invoice.issued"}).json()["data"]
    assert [(e["type"], e["account_id"]) for e in issued] == [("invoice.issued", acme)]
    assert client.get("/v1/events", params={"type": "invoice.issued", "account_id": other}).json()["data"] == []
    # As a webhook endpoint names what it wants: several types, a family, everything.
    both = client.get("/v1/events", params={"type": ["invoice.issued", "account.*"]}).json()["data"]
    assert sorted({e["type"] for e in both}) == ["account.created", "invoice.issued"]
    assert client.get("/v1/events", params={"type": "*", "limit": 100}).json() == events


def test_events_are_read_a_page_at_a_time_each_once(client, app):
    subscribed(app)
    customer(app, name="Other", owner="boss@other.test")
    seen, cursor = [], None
    while True:
        page = client.get("/v1/events", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [event["id"] for event in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [row[0] for row in written(app) if row[1] != "email"] and len(seen) > 2


def test_events_refused(client, app):
    subscribed(app)
    [email] = [row_id for row_id, topic, _ in written(app) if topic == "email"]
    problem(client.get(f"/v1/events/{email}"), 404, "unknown_event")  # an e-mail is not an event
    problem(client.get("/v1/events/999"), 404, "unknown_event")
    problem(client.get("/v1/events/0"), 422, "invalid_input")
    for params in ({"type": "email"}, {"type": "Invoice.Issued"}, {"type": "billing_contact.added"},
                   {"type": "invoice.issued\x00"}, {"type": ["invoice.issued", "nothing.*"]}):
        problem(client.get("/v1/events", params=params), 400, "unknown_event_type")
    for params in ({"type": "x" * 65}, {"account_id": 0}, {"limit": 0}, {"acount_id": 1}):
        problem(client.get("/v1/events", params=params), 422, "invalid_input")
