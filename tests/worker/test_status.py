"""`renewly worker status`: each batch's last run, next tick and how late it is, on either engine;
on SQLite whether a worker runs; on PostgreSQL the queue's section, never made up."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from renewly.adapters.db.locks import holding_the_worker_lock
from renewly.scheduler import advance, run_all
from renewly.worker.status import worker_status
from tests.builders import subscribed

START = datetime(2026, 1, 1, tzinfo=UTC)


def a_renewal_four_days_late(app) -> None:
    """A tick at the start (the first invoice charged), then 35 days with no batch: the renewal
    of 1 February waits."""
    subscribed(app)
    run_all(app, START)
    advance(app, timedelta(days=35), run_batches=False)


def test_each_batch_says_its_last_run_its_next_tick_and_how_late_that_tick_is(app):
    a_renewal_four_days_late(app)

    found = worker_status(app)

    assert found.now == START + timedelta(days=35)
    standing = {item.batch: item for item in found.batches}
    assert list(standing) == ["collect", "dunning", "renew", "void-verifications", "webhooks", "retention"]
    assert all(item.last_run_at == START for item in found.batches)
    assert standing["renew"].next_tick_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert standing["renew"].late_by == timedelta(days=4)
    assert (standing["collect"].next_tick_at, standing["collect"].late_by) == (None, timedelta(0))  # no work waits


def test_the_status_table_fits_80_columns_and_names_the_late_renewal(app, renewly):
    a_renewal_four_days_late(app)

    shown = renewly("worker", "status")

    assert (shown.code, shown.err) == (0, "")
    lines = shown.out.splitlines()
    assert lines[0] == "test clock: 2026-02-05 00:00 UTC"
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["batch", "every", "last", "run", "(UTC)", "next", "tick", "(UTC)", "late"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:8]}
    assert rows["renew"] == ["1", "h", "2026-01-01", "00:00", "2026-02-01", "00:00", "4", "d"]
    assert rows["collect"] == ["1", "h", "2026-01-01", "00:00", "no", "work"]
    if app.engine.dialect.name == "sqlite":
        assert lines[-1] == "worker: none runs on this database (`renewly worker` starts one)"
    else:
        assert lines[-1] == "queue: 0 live worker(s); no job queued, running or failed"


def test_the_status_in_json(app, renewly):
    a_renewal_four_days_late(app)

    found = renewly("worker", "status", "--json").json()

    assert (found["now"], found["clock"], found["engine"]) == ("2026-02-05T00:00:00+00:00", "test",
                                                               app.engine.dialect.name)
    renew = next(item for item in found["batches"] if item["batch"] == "renew")
    assert renew == {"batch": "renew", "interval_minutes": 60, "last_run_at": "2026-01-01T00:00:00+00:00",
                     "work_at": "2026-02-01T00:00:00+00:00", "next_tick_at": "2026-02-01T00:00:00+00:00",
                     "late_seconds": 4 * 86400}
    if app.engine.dialect.name == "sqlite":
        assert found["worker"]["live"] is False and found["queue"] is None
    else:
        assert found["worker"] is None
        assert found["queue"] == {"live_workers": 0, "jobs": []}


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_a_running_worker_shows_with_its_pid(app, renewly):
    with holding_the_worker_lock(app.engine) as lock:
        shown = renewly("worker", "status")
        found = renewly("worker", "status", "--json").json()
    after = renewly("worker", "status", "--json").json()

    assert " ".join(shown.out.split()).endswith(f"worker: running (pid {os.getpid()}); it holds {lock}")
    assert found["worker"] == {"live": True, "pid": os.getpid(), "lock_file": str(lock)}
    assert after["worker"] == {"live": False, "pid": None, "lock_file": str(lock)}
