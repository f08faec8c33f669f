"""Ticks in several processes at once: two `renewly run` record each batch's last run without a
crash, and test-clock moves take turns, each from where the one before it left the clock.

"At once" is made certain by a gate (tests/processes.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import batch_runs, card_verifications
from renewly.scheduler import batches
from tests.builders import customer, with_card
from tests.conftest import START
from tests.processes import run_at_once, run_together

ADVANCES = 6  # each process starts Python and Renewly: a second of CPU


@pytest.mark.postgres_only
def test_two_runs_at_once_record_when_each_batch_last_ran_and_neither_fails(pg_app):
    app = pg_app
    now = app.clock.now()
    # Neither finds the payment batch's row, and both insert it: an uncommitted row of that key
    # holds them at that insert, past their reads, until both wait there.
    reports = run_at_once(app, ["run"], gate="batch_runs",
                          holding="INSERT INTO batch_runs (batch, last_run_at) VALUES ('collect', now())")

    assert [[run["batch"] for run in report] for report in reports] == [[batch.name for batch in batches(app)]] * 2
    with app.engine.connect() as conn:
        assert dict(conn.execute(select(batch_runs.c.batch, batch_runs.c.last_run_at)).all()) == {
            batch.name: now for batch in batches(app)}


def holds_due_on_day_3(app) -> None:
    """Two saved cards: their checks' holds are voided by the first tick after day 3 (R5.2)."""
    for n in range(2):
        with_card(app, customer(app, name=f"Customer {n}", owner=f"owner{n}@acme.test"), owner=f"owner{n}@acme.test")


def assert_moved_in_turns(app, reports: list[dict]) -> None:
    """Each advance moved the clock one day from where the one before it had left it, and the
    ticks on the way ran once: the holds were voided once, by whichever advance passed day 3."""
    assert sorted(datetime.fromisoformat(report["now"]) for report in reports) == [
        START + timedelta(days=n) for n in range(1, ADVANCES + 1)]
    assert app.clock.now() == START + timedelta(days=ADVANCES)
    voided = [run["report"]["voided"] for report in reports for run in report["runs"]
              if run["batch"] == "void-verifications"]
    assert sum(voided) == 2 and app.gateway.held_authorizations() == []
    with app.engine.connect() as conn:
        assert set(conn.execute(select(card_verifications.c.status)).scalars()) == {"voided"}


@pytest.mark.postgres_only
def test_advances_of_a_day_at_once_take_turns_each_from_where_the_one_before_left_the_clock(pg_app, tmp_path):
    app = pg_app
    holds_due_on_day_3(app)

    # Each reads the clock, then waits at the gate to move it (or waits for its turn).
    reports = run_at_once(app, ["clock", "advance", "--days", "1"], gate="test_clock", count=ADVANCES,
                          cwd=tmp_path)

    assert_moved_in_turns(app, reports)


def test_advances_of_a_day_at_once_on_sqlite_take_turns_each_from_where_the_one_before_left_the_clock(
        databases, tmp_path):
    app = databases.fresh_app("sqlite")
    holds_due_on_day_3(app)

    reports = run_together(app, ["clock", "advance", "--days", "1"], count=ADVANCES, cwd=tmp_path)

    assert_moved_in_turns(app, reports)
