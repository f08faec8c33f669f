"""Queue workers (`renewly worker`, renewly.worker.queue.run_worker) in processes of their own, on a test's
PostgreSQL database and test clock, for the tests that start, kill and stop them.

    workers = start_workers(app, 3)            # three workers, the test settings below
    settle(app, workers)                       # until nothing is due and no tick or helper runs
    stop_workers(workers)                      # SIGTERM, each must exit 0

A worker looks for a tick every second, says it is alive every half second, and is taken for
dead after two seconds of silence, so that a test of a kill -9 waits seconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from renewly.scheduler import schedule, tick_due

RENEWLY = Path(sys.executable).with_name("renewly")
TEST_SETTINGS = {"RENEWLY_WORKER__CHECK_SECONDS": "1", "RENEWLY_WORKER__HEARTBEAT_SECONDS": "0.5",
                 "RENEWLY_WORKER__STALLED_SECONDS": "2"}


def worker_environment(app, **settings: str) -> dict[str, str]:
    """The environment of a worker on the test's database, gateway ledger and test clock;
    `settings`: more RENEWLY_* variables (`RENEWLY_WORKER__SLICE_HELPERS="0"`)."""
    return {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
            "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), **TEST_SETTINGS, **settings}


def start_workers(app, count: int = 1, **settings: str) -> list[subprocess.Popen]:
    """`count` workers started at once; each has joined the queue (its heartbeat row) on return."""
    with app.engine.connect() as conn:
        # Ids only grow; a starting worker may remove dead ones first.
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM procrastinate_workers")).scalar_one()
    workers = [subprocess.Popen([str(RENEWLY), "worker"], env=worker_environment(app, **settings),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(count)]
    wait_for(lambda: _registered(app, after=before) >= count, workers, "the workers never joined the queue")
    return workers


def _registered(app, after: int) -> int:
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM procrastinate_workers WHERE id > :after"),
                            {"after": after}).scalar_one()


def busy_jobs(app) -> int:
    """Ticks and helpers queued or running."""
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name IN ('tick', 'slices') "
                                 "AND status IN ('todo', 'doing')")).scalar_one()


def settle(app, workers: list[subprocess.Popen], timeout: float = 60) -> None:
    """Wait until the workers have done everything due at the test clock's now: no tick due, no
    tick or helper queued or running (twice in a row: a look may be deferring one)."""
    calm = 0

    def settled() -> bool:
        nonlocal calm
        quiet = busy_jobs(app) == 0 and tick_due(app, app.clock.now()) is None
        calm = calm + 1 if quiet else 0
        return calm >= 2

    try:
        wait_for(settled, workers, f"the workers never settled at {app.clock.now().isoformat()}", timeout)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{standing(app)}") from None


def standing(app) -> str:
    """What is due and what the queue holds: why the workers have not settled."""
    with app.engine.connect() as conn:
        jobs = conn.execute(text("SELECT id, task_name, status, args, worker_id, attempts FROM procrastinate_jobs "
                                 "WHERE status IN ('todo', 'doing', 'failed') ORDER BY id")).all()
        workers = conn.execute(text("SELECT id, now() - last_heartbeat FROM procrastinate_workers")).all()
    due = [(item.batch, item.work_at, item.next_tick_at) for item in schedule(app, app.clock.now())]
    return f"due: {due}\njobs: {jobs}\nworkers: {workers}"


def wait_for(condition, workers: list[subprocess.Popen], failure: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            if worker.poll() is not None:
                raise AssertionError(f"a worker exited {worker.returncode}: {worker.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def stop_workers(workers: list[subprocess.Popen], timeout: float = 30) -> list[tuple[int, str]]:
    """SIGTERM to each running worker; each one's (exit code, stderr)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    outcomes = []
    for worker in workers:
        _, err = worker.communicate(timeout=timeout)
        outcomes.append((worker.returncode, err))
    return outcomes


def kill_workers(workers: list[subprocess.Popen]) -> None:
    """kill -9: no handler runs, no transaction commits, the heartbeat stops."""
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        worker.stdout.close()
        worker.stderr.close()
