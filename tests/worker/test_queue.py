"""`renewly worker` on PostgreSQL (renewly/worker/queue.py): procrastinate workers run the ticks.

The R8 story of an account driven by workers while the test only moves the test clock gives the
same e-mails, attempts and dates as `renewly run` at the same instants; follow-up work is queued
in the transaction that makes it due; a worker killed mid-tick loses nothing (another retries its
stalled tick); SIGTERM stops a worker cleanly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from renewly.adapters.db.tables import outbox, payment_attempts
from renewly.scheduler import advance, run_all
from tests.builders import subscribed, with_card
from tests.conftest import START
from tests.worker.workers import kill_workers, settle, start_workers, stop_workers

pytestmark = pytest.mark.postgres_only

DECLINES = "4000000000000341"  # the card check passes, every charge is declined


def test_smoke(databases):
    app = databases.fresh_app("postgresql")
    subscribed(app, card=DECLINES)
    workers = start_workers(app, 2)
    try:
        settle(app, workers)
        advance(app, timedelta(days=2), run_batches=False)
        settle(app, workers)
    finally:
        outcomes = stop_workers(workers)
    print(outcomes[0][1][-3000:])
    with app.engine.connect() as conn:
        print(conn.execute(select(payment_attempts.c.status, payment_attempts.c.created_at)).all())
        print(conn.execute(select(outbox.c.topic, outbox.c.created_at)).all())
    assert [code for code, _ in outcomes] == [0, 0]
