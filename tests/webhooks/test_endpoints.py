"""Endpoints are registered with a secret given once, listed without it, disabled, enabled and
removed, each act audited; a refused request changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from renewly.adapters.db.tables import audit_log, webhook_deliveries
from renewly.adapters.webhooks import sign
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound
from renewly.webhooks.delivery import deliver_due
from renewly.webhooks.endpoints import (
    add_endpoint,
    disable_endpoint,
    enable_endpoint,
    get_endpoint,
    list_endpoints,
    remove_endpoint,
    rotate_secret,
)
from tests.builders import OPERATOR, customer, database_rows


def test_an_endpoint_s_secret_is_given_once_and_signs_what_the_library_verifies(app):
    added = add_endpoint(app, url="https://host.example/hooks", event_types=["account.*", "invoice.issued"],
                         description="production", actor=OPERATOR)
    assert added.secret.startswith("whsec_") and len(added.secret) > 40
    headers = sign(added.secret, "msg_1", '{"type":"account.created"}')
    assert Webhook(added.secret).verify('{"type":"account.created"}', headers) == {"type": "account.created"}

    [listed] = list_endpoints(app)
    assert "secret" not in listed and added.secret not in str(listed)
    assert (listed["id"], listed["url"], listed["event_types"], listed["description"], listed["disabled_at"]) == (
        added.id, "https://host.example/hooks", ["account.*", "invoice.issued"], "production", None)
    assert listed["deliveries"] == {"pending": 0, "replay": 0, "delivered": 0, "failed": 0}
    assert get_endpoint(app, added.id) == listed
    assert add_endpoint(app, url="https://host.example/other", event_types=["*"], actor=OPERATOR).secret != added.secret


def test_disabled_it_gets_no_new_event_enabled_it_gets_those_written_from_then_on(databases, db_kind, receiver):
    app = databases.fresh_app(db_kind)
    endpoint = add_endpoint(app, url=receiver.url, event_types=["account.created"], actor=OPERATOR)
    disable_endpoint(app, endpoint.id, reason="maintenance", actor=OPERATOR)
    customer(app)
    assert deliver_due(app, app.clock.now()).handed_over == 0  # no endpoint enabled: the event waits
    with pytest.raises(NotAllowed):
        disable_endpoint(app, endpoint.id, actor=OPERATOR)

    app.test_clock.set(app.clock.now() + timedelta(minutes=1))
    assert enable_endpoint(app, endpoint.id, actor=OPERATOR) == 0
    customer(app, name="Later", owner="owner@later.test")
    report = deliver_due(app, app.clock.now())

    assert (report.handed_over, report.delivered) == (2, 1)
    assert [request.webhook_id for request in receiver.received()] == ["msg_2"]
    with pytest.raises(NotAllowed):
        enable_endpoint(app, endpoint.id, actor=OPERATOR)
    with app.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.action, audit_log.c.reason).where(
            audit_log.c.target_type == "webhook_endpoint").order_by(audit_log.c.id)).all()
    assert [tuple(row) for row in trail] == [
        ("webhook_endpoint.added", ""), ("webhook_endpoint.disabled", "maintenance"), ("webhook_endpoint.enabled", "")]


def test_removed_it_goes_with_its_deliveries(databases, db_kind, receiver):
    app = databases.fresh_app(db_kind)
    endpoint = add_endpoint(app, url=receiver.url, event_types=["*"], actor=OPERATOR)
    customer(app)
    deliver_due(app, app.clock.now())

    remove_endpoint(app, endpoint.id, actor=OPERATOR)

    assert list_endpoints(app) == []
    with app.engine.connect() as conn:
        assert conn.execute(select(webhook_deliveries)).all() == []
    with pytest.raises(NotFound):
        remove_endpoint(app, endpoint.id, actor=OPERATOR)


@pytest.mark.parametrize(("change", "refusal"), [
    (lambda app: add_endpoint(app, url="ftp://host.example", event_types=["*"], actor=OPERATOR), InvalidInput),
    (lambda app: add_endpoint(app, url="https://host.example", event_types=["nope"], actor=OPERATOR), InvalidInput),
    (lambda app: add_endpoint(app, url="https://host.example", event_types=["*"], description="a\nb",
                              actor=OPERATOR), InvalidInput),
    (lambda app: disable_endpoint(app, 99, actor=OPERATOR), NotFound),
    (lambda app: enable_endpoint(app, 1, actor=OPERATOR), NotAllowed),
    (lambda app: get_endpoint(app, 99), NotFound),
], ids=["scheme", "type", "description", "unknown", "enabled", "get"])
def test_a_refused_request_changes_nothing(app, change, refusal):
    add_endpoint(app, url="https://host.example", event_types=["*"], actor=OPERATOR)
    before = database_rows(app)
    with pytest.raises(refusal):
        change(app)
    assert database_rows(app) == before


def test_a_rotated_secret_is_given_once_and_the_old_one_signs_beside_it_until_the_overlap_ends(
        databases, db_kind, receiver):
    app = databases.fresh_app(db_kind)
    added = add_endpoint(app, url=receiver.url, event_types=["account.created"], actor=OPERATOR)
    rotated = rotate_secret(app, added.id, overlap_hours=24, actor=OPERATOR)
    assert rotated.secret.startswith("whsec_") and rotated.secret != added.secret
    assert rotated.previous_secret_until == app.clock.now() + timedelta(hours=24)
    assert get_endpoint(app, added.id)["previous_secret_until"] == rotated.previous_secret_until
    assert "secret" not in get_endpoint(app, added.id)

    customer(app, name="During the overlap")
    deliver_due(app, app.clock.now())
    app.test_clock.set(rotated.previous_secret_until)
    customer(app, name="After it")
    deliver_due(app, app.clock.now())

    during, after = receiver.received()
    for holder in (added.secret, rotated.secret):  # a receiver holding either secret accepts it
        assert Webhook(holder).verify(during.body, during.headers)["type"] == "account.created"
    assert Webhook(rotated.secret).verify(after.body, after.headers)["type"] == "account.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(added.secret).verify(after.body, after.headers)
    with app.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.action, audit_log.c.details)
                            .where(audit_log.c.action == "webhook_endpoint.secret_rotated")).all() == [
            ("webhook_endpoint.secret_rotated", {"previous_secret_until": rotated.previous_secret_until.isoformat()})]


def test_a_leaked_secret_rotated_with_no_overlap_and_a_second_rotation_end_the_old_secrets_at_once(app, receiver):
    added = add_endpoint(app, url=receiver.url, event_types=["account.created"], actor=OPERATOR)
    first = rotate_secret(app, added.id, overlap_hours=24, actor=OPERATOR)
    second = rotate_secret(app, added.id, overlap_hours=0, actor=OPERATOR)
    assert second.previous_secret_until is None
    customer(app)
    deliver_due(app, app.clock.now())
    [sent] = receiver.received()
    assert len(sent.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(second.secret).verify(sent.body, sent.headers)["type"] == "account.created"
    for old in (added.secret, first.secret):
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(sent.body, sent.headers)


def test_rotating_an_unknown_endpoint_or_a_week_and_more_of_overlap_changes_nothing(app):
    added = add_endpoint(app, url="https://host.example/hooks", event_types=["*"], actor=OPERATOR)
    before = database_rows(app)
    with pytest.raises(NotFound):
        rotate_secret(app, added.id + 1, actor=OPERATOR)
    with pytest.raises(InvalidInput):
        rotate_secret(app, added.id, overlap_hours=169, actor=OPERATOR)
    assert database_rows(app) == before
