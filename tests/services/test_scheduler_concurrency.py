"""Ticks in several processes at once: two `renewly run` record each batch's last run without a
crash, and test-clock moves take turns, each from where the one before it left the clock.

"At once" is made certain by a gate (tests/processes.py).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import batch_runs
from renewly.services.scheduler import BATCHES
from tests.processes import run_at_once


@pytest.mark.postgres_only
def test_two_runs_at_once_record_when_each_batch_last_ran_and_neither_fails(pg_app):
    app = pg_app
    now = app.clock.now()
    # Neither finds the payment batch's row, and both insert it: an uncommitted row of that key
    # holds them at that insert, past their reads, until both wait there.
    reports = run_at_once(app, ["run"], gate="batch_runs",
                          holding="INSERT INTO batch_runs (batch, last_run_at) VALUES ('collect', now())")

    assert [[run["batch"] for run in report] for report in reports] == [[batch.name for batch in BATCHES]] * 2
    with app.engine.connect() as conn:
        assert dict(conn.execute(select(batch_runs.c.batch, batch_runs.c.last_run_at)).all()) == {
            batch.name: now for batch in BATCHES}
