"""Janitors at once settle each unanswered attempt once: one claims it (FOR UPDATE SKIP LOCKED on
PostgreSQL, SQLite's single writer) under a lease of its own before asking the gateway, and
records the answer only if the attempt is still its own, so that each answer makes one payment
event, one recovery, one notice, whoever asked."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import outbox
from renewly.adapters.gateways.simulated import Fault
from renewly.payments.collect import collect_due
from renewly.payments.janitor import settle_unsettled_attempts
from renewly.payments.reconcile import reconcile
from tests.builders import subscribed, team_plan
from tests.payment_builders import attempts, invoice_statuses, paying_customer, successes_per_invoice, while_held
from tests.processes import run_at_once


def payment_events(app) -> Counter:
    """(topic, attempt id) -> how many events the outbox holds."""
    with app.engine.connect() as conn:
        return Counter((row.topic, row.payload["attempt_id"]) for row in conn.execute(
            select(outbox.c.topic, outbox.c.payload).where(outbox.c.topic.like("payment.%"))))


def test_r5_3_two_janitors_at_once_settle_each_unanswered_attempt_once(app):
    plan = team_plan(app)
    for n in range(3):
        subscribed(app, plan=plan, owner=f"owner{n}@acme.test")
    app.gateway.script(Fault.TIMEOUT_AFTER, count=3)  # charged, every answer lost
    assert collect_due(app, app.clock.now()).unknown == 3
    now = app.clock.now()

    first, second = while_held(app, lambda held: settle_unsettled_attempts(held, now),
                               lambda plain: settle_unsettled_attempts(plain, now))

    assert (first, second) == (3, 0)  # the second found every attempt claimed by the first
    assert payment_events(app) == Counter({("payment.succeeded", a["id"]): 1 for a in attempts(app)})
    assert app.gateway.charge_count() == 3 and set(successes_per_invoice(app).values()) == {1}
    assert set(invoice_statuses(app).values()) == {"paid"} and reconcile(app).discrepancies == []


def test_r5_3_a_payment_batch_whose_lease_ran_out_at_the_gateway_leaves_the_answer_to_the_janitor_that_took_over(
        databases, db_kind):
    app = databases.fresh_app(db_kind, payments={"lease_seconds": 0})
    paying_customer(app)
    now = app.clock.now()

    # The batch's call hangs past its lease: a janitor takes the attempt over and settles it.
    batch, janitor = while_held(app, lambda held: collect_due(held, now),
                                lambda plain: settle_unsettled_attempts(plain, now))

    assert (batch.attempted, janitor) == (1, 1)
    assert [a["status"] for a in attempts(app)] == ["succeeded"]
    assert payment_events(app) == Counter({("payment.succeeded", attempts(app)[0]["id"]): 1})
    assert app.gateway.charge_count() == 1 and reconcile(app).discrepancies == []


@pytest.mark.postgres_only
def test_r5_3_four_payment_batches_at_once_settle_each_unanswered_attempt_once(pg_app, tmp_path):
    app = pg_app
    plan = team_plan(app)
    for n in range(20):
        subscribed(app, plan=plan, owner=f"owner{n}@acme.test")
    app.gateway.script(Fault.TIMEOUT_AFTER, count=10)  # charged, the answer lost
    app.gateway.script(Fault.SERVER_ERROR, count=10)  # not charged, and no answer either
    assert collect_due(app, app.clock.now()).unknown == 20
    assert app.gateway.charge_count() == 10

    # Each janitor reads the unanswered attempts, then waits at the gate to write.
    reports = run_at_once(app, ["collect"], gate="payment_attempts", count=4, cwd=tmp_path,
                          environment={"RENEWLY_ACTOR": "test:collect"})

    assert sum(report["settled_by_janitor"] for report in reports) == 20
    assert sum(report["attempted"] for report in reports) == 0
    assert payment_events(app) == Counter({("payment.succeeded", a["id"]): 1 for a in attempts(app)})
    assert app.gateway.charge_count() == 20 and set(successes_per_invoice(app).values()) == {1}
    assert set(invoice_statuses(app).values()) == {"paid"} and reconcile(app).discrepancies == []
