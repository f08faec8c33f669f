"""Every outbox event reaches each endpoint that wants it, signed per Standard Webhooks, at least
once, through a receiver on loopback that fails (5xx, replies too late, connections dropped): a
receiver gets an event twice only as a repeat of the same webhook-id, after a try that failed on
Renewly's side; an endpoint failing for three days is disabled and the operator told."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import outbox, webhook_deliveries, webhook_delivery_attempts, webhook_endpoints
from renewly.outbox import writer
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from renewly.webhooks.deliveries import get_delivery, list_deliveries, replay_delivery
from renewly.webhooks.delivery import deliver_due, next_webhook_at
from renewly.webhooks.endpoints import add_endpoint, enable_endpoint
from renewly.webhooks.rules.events import public_type
from renewly.worker.status import worker_status
from tests.builders import OPERATOR, customer
from tests.webhooks.receiver import DROP, OK, SERVER_ERROR, SLOW, Receiver

FAST = {"timeout_seconds": 0.5, "slice_size": 25, "concurrency": 8}
TOPICS = ["account.created", "invoice.issued", "payment.succeeded", "payment.declined", "account.dunning_state",
          "billing_contact.added"]


def write_events(app, count: int) -> dict[int, tuple[str, dict]]:
    """`count` events written now, as use cases write them (and one e-mail, which is no event):
    their outbox ids -> (topic, payload)."""
    now = app.clock.now()
    rows = [writer.event(now, TOPICS[n % len(TOPICS)], 1 + n % 3, {"n": n}) for n in range(count)]
    with app.engine.begin() as conn:
        writer.write_many(conn, rows)
        writer.write(conn, writer.email(now, 1, kind="invoice", locale="en", recipients=["owner@acme.test"],
                                        subject="s", body="b", html="<p>b</p>"))
        ids = conn.execute(select(outbox.c.id).where(outbox.c.topic != "email").order_by(outbox.c.id)).scalars()
        return {outbox_id: (row.topic, row.payload) for outbox_id, row in zip(ids, rows)}


def send_until_done(app, rounds: int = 30) -> None:
    """The webhooks batch, the test clock moved to its next work each time, until none is left."""
    for _ in range(rounds):
        deliver_due(app, app.clock.now())
        with app.engine.connect() as conn:
            due = next_webhook_at(conn, app)
        if due is None:
            return
        app.test_clock.set(max(due, app.clock.now()))
    raise AssertionError(f"webhooks still due after {rounds} rounds")


def deliveries(app) -> list:
    with app.engine.connect() as conn:
        return conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).all()


def attempts_logged(app) -> Counter:
    with app.engine.connect() as conn:
        return Counter(conn.execute(select(webhook_delivery_attempts.c.delivery_id)).scalars())


def test_every_event_reaches_the_endpoints_that_want_it_signed_through_30_percent_failures_none_lost(
        databases, db_kind):
    receiver = Receiver(failures=0.3, seed=13, slow_seconds=0.8).start()
    try:
        app = databases.fresh_app(db_kind, webhooks=FAST)
        everything = add_endpoint(app, url=f"{receiver.url}/all", event_types=["*"], actor=OPERATOR)
        billing = add_endpoint(app, url=f"{receiver.url}/billing", event_types=["invoice.issued", "payment.*"],
                               actor=OPERATOR)
        events = write_events(app, 60)

        send_until_done(app)
    finally:
        receiver.stop()

    wanted = {"/all": set(events), "/billing": {outbox_id for outbox_id, (topic, _) in events.items()
                                                 if topic.startswith(("invoice.", "payment."))}}
    secrets = {"/all": everything.secret, "/billing": billing.secret}
    assert {request.answer for request in receiver.received()} == {OK, SERVER_ERROR, SLOW, DROP}
    for path, outbox_ids in wanted.items():
        requests = receiver.received(path)
        by_id = defaultdict(list)
        for request in requests:
            # Every request, failed or not, verifies with the endpoint's secret, as the library checks it.
            by_id[request.webhook_id].append((Webhook(secrets[path]).verify(request.body, request.headers),
                                              request.body, request.answer))
        # Each event wanted, and nothing else, its last request answered 2xx: none lost.
        assert set(by_id) == {f"msg_{outbox_id}" for outbox_id in outbox_ids}
        for outbox_id in outbox_ids:
            tries = by_id[f"msg_{outbox_id}"]
            topic, payload = events[outbox_id]
            parsed, sent, _ = tries[0]
            assert parsed["type"] == public_type(topic)
            assert parsed["data"] == {"account_id": 1 + payload["n"] % 3, **payload}
            # A repeat is the same message under the same webhook-id, byte for byte.
            assert {body for _, body, _ in tries} == {sent}
            assert tries[-1][2] == OK
    found = deliveries(app)
    assert len(found) == len(wanted["/all"]) + len(wanted["/billing"])
    assert {row.status for row in found} == {"delivered"}
    # The log has a row per try, each delivery its count; the last try alone was answered 2xx. A
    # try the receiver never saw is a timeout (on a busy machine, a connection not taken in time).
    requests_per_delivery = Counter((request.path, request.webhook_id) for request in receiver.received())
    path_of = {everything.id: "/all", billing.id: "/billing"}
    for row in found:
        log = get_delivery(app, row.id)["attempts"]
        unseen = row.attempts - requests_per_delivery[(path_of[row.endpoint_id], f"msg_{row.outbox_id}")]
        assert len(log) == row.attempts and [attempt["http_status"] for attempt in log].count(200) == 1
        assert log[-1]["http_status"] == 200 and unseen >= 0
        assert unseen <= sum(attempt["error"] is not None and "timed out" in attempt["error"] for attempt in log)
    with app.engine.connect() as conn:  # the e-mail is not an event: it waits for SMTP, untouched
        assert conn.execute(select(outbox.c.delivered_at).where(outbox.c.topic == "email")).scalar_one() is None


def test_an_endpoint_failing_for_three_days_is_disabled_its_operator_told_then_enabled_and_replayed(
        databases, db_kind, receiver):
    app = databases.fresh_app(db_kind, webhooks=FAST)
    endpoint = add_endpoint(app, url=f"{receiver.url}/hook", event_types=["account.*"], actor=OPERATOR)
    receiver.answers = [SERVER_ERROR] * 100
    started = app.clock.now()
    account_id = customer(app)  # account.created

    # The scheduler's ticks on the test clock run the webhooks batch, as a worker's would.
    advance(app, timedelta(days=2))
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)  # account.updated
    advance(app, timedelta(days=2))

    with app.engine.connect() as conn:
        disabled = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint.id)).one()
        told = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "webhook_endpoint.disabled")).all()
    # Its tenth try, at the end of the schedule (first try, then 9 waits: 75 h 35 min 5 s, at minute ticks).
    first, second = deliveries(app)
    assert (first.status, first.attempts, second.status) == ("failed", 10, "pending")
    tried_first = get_delivery(app, first.id)["attempts"][0]["at"]
    assert tried_first == started + timedelta(minutes=1)  # the batch's first tick after the event
    assert disabled.disabled_at == first.failed_at and disabled.failing_since == tried_first
    assert disabled.disabled_at - tried_first >= timedelta(days=3)
    assert told == [({"endpoint_id": endpoint.id, "url": f"{receiver.url}/hook",
                      "failing_since": tried_first.isoformat()},)]
    status = worker_status(app)
    assert [item["id"] for item in status.disabled_endpoints] == [endpoint.id]
    assert "webhooks" in [item.batch for item in status.batches]
    sent = len(receiver.received())

    advance(app, timedelta(days=3))  # disabled: its waiting delivery is not tried, nor new events sent
    assert len(receiver.received()) == sent and deliveries(app)[1].status == "pending"
    with pytest.raises(NotAllowed):
        replay_delivery(app, first.id, actor=OPERATOR)

    receiver.answers = []  # the receiver mended
    assert enable_endpoint(app, endpoint.id, actor=OPERATOR) == 1
    replay_delivery(app, first.id, actor=OPERATOR)
    advance(app, timedelta(minutes=1))

    assert [(row.status, row.attempts) for row in deliveries(app)] == [("delivered", 11), ("delivered", 9)]
    log = get_delivery(app, first.id)["attempts"]
    assert [(attempt["http_status"], attempt["replay"]) for attempt in log] == [(503, False)] * 10 + [(200, True)]
    assert [request.webhook_id for request in receiver.received()].count(f"msg_{first.outbox_id}") == 11
    assert worker_status(app).disabled_endpoints == []


def test_a_replay_sends_the_same_message_again_under_the_same_webhook_id(databases, db_kind, receiver):
    app = databases.fresh_app(db_kind, webhooks=FAST)
    endpoint = add_endpoint(app, url=receiver.url, event_types=["account.created"], actor=OPERATOR)
    customer(app)
    deliver_due(app, app.clock.now())
    [delivery] = list_deliveries(app, endpoint_id=endpoint.id)

    replayed = replay_delivery(app, delivery["id"], actor=OPERATOR)
    assert (replayed["status"], replayed["next_attempt_at"]) == ("replay", app.clock.now())
    report = deliver_due(app, app.clock.now())

    first, again = receiver.received()
    assert (report.delivered, report.resent) == (1, 1)
    assert (again.webhook_id, again.body) == (first.webhook_id, first.body) == (delivery["webhook_id"], first.body)
    assert again.headers["webhook-signature"].startswith("v1,")
    assert Webhook(endpoint.secret).verify(again.body, again.headers)["type"] == "account.created"
    assert [attempt["replay"] for attempt in get_delivery(app, delivery["id"])["attempts"]] == [False, True]


def test_events_wait_while_no_endpoint_is_enabled_and_an_endpoint_gets_only_what_is_written_after_it(
        databases, db_kind, receiver):
    app = databases.fresh_app(db_kind, webhooks=FAST)
    customer(app)
    with app.engine.connect() as conn:
        assert next_webhook_at(conn, app) is None  # nothing to do: no idle ticks for it
    assert deliver_due(app, app.clock.now()).handed_over == 0
    app.test_clock.set(app.clock.now() + timedelta(minutes=1))
    add_endpoint(app, url=receiver.url, event_types=["account.*"], actor=OPERATOR)
    customer(app, name="Later", owner="owner@later.test")

    report = deliver_due(app, app.clock.now())

    assert (report.handed_over, report.deliveries_made, report.delivered) == (2, 1, 1)
    [request] = receiver.received()
    assert request.webhook_id == "msg_2"


def test_an_event_s_deliveries_and_their_log_go_with_it(databases, db_kind, receiver):
    """The retention batch deletes a deleted account's outbox rows (R10.1): what was sent of them
    goes too, on both engines."""
    app = databases.fresh_app(db_kind, webhooks=FAST)
    add_endpoint(app, url=receiver.url, event_types=["*"], actor=OPERATOR)
    customer(app)
    deliver_due(app, app.clock.now())
    assert len(deliveries(app)) == 1 and sum(attempts_logged(app).values()) == 1
    with app.engine.begin() as conn:
        conn.execute(outbox.delete())
    assert deliveries(app) == [] and attempts_logged(app) == Counter()


@pytest.mark.postgres_only
def test_two_webhook_sends_at_once_hand_each_event_over_once_and_deliver_it_once(pg_app, receiver):
    from tests.processes import run_at_once
    endpoint = add_endpoint(pg_app, url=receiver.url, event_types=["*"], actor=OPERATOR)
    write_events(pg_app, 80)
    environment = {"RENEWLY_WEBHOOKS__SLICE_SIZE": "10", "RENEWLY_WEBHOOKS__CONCURRENCY": "2"}

    reports = run_at_once(pg_app, ["webhooks", "send"], gate="webhook_deliveries", environment=environment)

    assert sum(report["handed_over"] for report in reports) == 80
    assert sum(report["delivered"] for report in reports) == 80
    assert all(report["delivered"] > 0 for report in reports)  # both took slices
    ids = Counter(request.webhook_id for request in receiver.received())
    assert len(ids) == 80 and max(ids.values()) == 1
    assert {row.endpoint_id for row in deliveries(pg_app)} == {endpoint.id}


def test_a_queue_worker_s_helper_finds_the_webhooks_and_mail_batches_by_name():
    """On PostgreSQL a tick's helpers run the batch a job names (worker/queue.py)."""
    from renewly.scheduler import MAIL, WEBHOOKS, batch_named
    assert (batch_named("webhooks"), batch_named("mail")) == (WEBHOOKS, MAIL)
