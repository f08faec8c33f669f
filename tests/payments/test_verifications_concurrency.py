"""R5.2 with void batches at once (two `renewly run`, two processes): each card check is claimed
by one of them before the gateway is asked, and voided once; neither fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import card_verifications
from renewly.payments.verifications import void_due_verifications
from renewly.scheduler import advance
from tests.builders import customer, with_card
from tests.payment_builders import while_held
from tests.processes import run_at_once


def checks_to_void(app, count: int) -> None:
    """`count` saved cards whose checks' holds are due for voiding."""
    for n in range(count):
        with_card(app, customer(app, name=f"Customer {n}", owner=f"owner{n}@acme.test"), owner=f"owner{n}@acme.test")
    advance(app, timedelta(days=app.policy.verification_void_delay_days), run_batches=False)
    assert len(app.gateway.held_authorizations()) == count


def check_statuses(app) -> list[str]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(card_verifications.c.status).order_by(card_verifications.c.id)).scalars())


def test_r5_2_two_void_batches_at_once_void_each_check_once(app):
    checks_to_void(app, 3)
    now = app.clock.now()

    first, second = while_held(app, lambda held: void_due_verifications(held, now),
                               lambda plain: void_due_verifications(plain, now))

    assert (first.voided, second.voided, first.failed, second.failed) == (3, 0, 0, 0)
    assert check_statuses(app) == ["voided"] * 3 and app.gateway.held_authorizations() == []


@pytest.mark.postgres_only
def test_r5_2_two_runs_at_once_void_each_check_once_and_neither_fails(pg_app):
    app = pg_app
    checks_to_void(app, 10)

    # Each run reads the checks due, then waits at the gate to write.
    reports = run_at_once(app, ["run"], gate="card_verifications")

    voids = [run["report"] for report in reports for run in report if run["batch"] == "void-verifications"]
    assert sum(void["voided"] for void in voids) == 10 and sum(void["failed"] for void in voids) == 0
    assert check_statuses(app) == ["voided"] * 10 and app.gateway.held_authorizations() == []
