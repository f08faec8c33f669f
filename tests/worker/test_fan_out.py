"""A tick's helpers go one to each other live worker (renewly/worker/queue.py, migration 0019).

procrastinate hands a job to whichever worker fetches it first: helpers on one shared queue went
two to one worker and none to another (docs/performance.md, Scale-out). Each worker now also
listens on a queue of its own, and the tick defers one helper to each other live worker's. A
helper whose worker died is still done: put back in the shared queue, or its slices taken by
the tick and the other helpers; every charge and e-mail exactly once.

The workers are caught mid-batch, their charges at a slow gateway (a second and a half a call):
who holds what is then read in the job table and the attempts, not guessed from the logs' timings.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from renewly.worker.queue import HELPERS_OF_THE_DEAD, SLICES
from tests.builders import subscribed, team_plan
from tests.conftest import START
from tests.worker.test_queue import DECLINES, attempts, emails, move_clock_to
from tests.worker.workers import kill_workers, settle, start_workers, stop_workers, wait_for

pytestmark = pytest.mark.postgres_only

DAY_1 = START + timedelta(days=1)
# Small slices at a slow gateway: a worker holds two slices of two (one at the gateway, the next
# claimed), so twelve renewals keep three workers busy; a killed worker's pending charges are
# settled by the next payment batch once their lease ends (two seconds, not fifteen minutes).
SLOW_GATEWAY = {"RENEWLY_PAYMENTS__SLICE_SIZE": "2", "RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": "1500",
                "RENEWLY_PAYMENTS__LEASE_SECONDS": "2"}


def renewing_on_day_1(app, count: int) -> None:
    """`count` accounts whose renewals fall due on day 1, each charge declined."""
    plan = team_plan(app)
    for number in range(count):
        subscribed(app, card=DECLINES, plan=plan, start=DAY_1.date(), name=f"Acme {number}",
                   owner=f"owner@acme{number}.test")


def running_jobs(app) -> list[tuple[str, str, int]]:
    """The jobs running: (task, queue, pid of the worker running it), the pid read at the end of
    the worker's own queue name (`slices@<random>@renewly@<host>:<pid>`)."""
    with app.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT j.task_name, j.queue_name, q.queue_name FROM procrastinate_jobs AS j "
            "JOIN worker_queues AS q ON q.worker_id = j.worker_id WHERE j.status = 'doing' "
            "AND j.task_name IN ('tick', 'slices') ORDER BY j.id")).all()
    return [(task, queue, int(own.rsplit(":", 1)[1])) for task, queue, own in rows]


def own_queues(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM worker_queues")).scalar_one()


def pending_charges(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM payment_attempts WHERE status = 'pending'")).scalar_one()


def charging(app, workers: int) -> bool:
    """The tick and a helper on each other worker all running, each with charges at the gateway
    (a worker has at most four pending: two slices of two)."""
    return len(running_jobs(app)) == workers and pending_charges(app) > 4 * (workers - 1)


def collected_by(err: str) -> int:
    """What one worker's log says it charged: its `batch run` lines of the payment batch."""
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return sum(line["attempted"] for line in lines if line.get("event") == "batch run" and line["batch"] == "collect")


def test_a_ticks_helpers_go_one_to_each_other_live_worker_and_each_worker_charges_some(databases):
    app = databases.fresh_app("postgresql")
    renewing_on_day_1(app, 12)
    workers = start_workers(app, 3, **SLOW_GATEWAY)
    try:
        settle(app, workers)  # nothing due yet
        wait_for(lambda: own_queues(app) == 3, workers, "a worker never said which queue is its own")
        move_clock_to(app, DAY_1)  # the renewals, then the payment batch: the tick fans it out
        wait_for(lambda: charging(app, 3), workers, "the tick and two helpers never charged at once")
        held = running_jobs(app)
        settle(app, workers)
    finally:
        outcomes = stop_workers(workers)
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes[0][1][-2000:]
    # The tick and one helper on each of the two other workers: one job each, two helpers in two
    # own queues, none in the shared one.
    assert sorted(task for task, _, _ in held) == ["slices", "slices", "tick"]
    assert sorted(pid for _, _, pid in held) == sorted(worker.pid for worker in workers)
    helpers = [(queue, pid) for task, queue, pid in held if task == "slices"]
    assert all(queue.endswith(f":{pid}") for queue, pid in helpers)
    # Each worker charged some of the twelve; together, each once.
    charged = [collected_by(err) for _, err in outcomes]
    assert all(count > 0 for count in charged) and sum(charged) == 12, charged
    assert attempts(app) == [("declined", DAY_1)] * 12
    assert sorted(kind for _, kind, _ in emails(app)) == ["payment_failed_1"] * 12


def test_a_helper_whose_worker_died_is_done_by_the_others_each_charge_once(databases):
    app = databases.fresh_app("postgresql")
    renewing_on_day_1(app, 12)
    workers = start_workers(app, 2, **SLOW_GATEWAY)
    try:
        settle(app, workers)
        wait_for(lambda: own_queues(app) == 2, workers, "a worker never said which queue is its own")
        move_clock_to(app, DAY_1)
        wait_for(lambda: charging(app, 2), workers, "the tick and its helper never charged at once")
        [helper_pid] = [pid for task, _, pid in running_jobs(app) if task == "slices"]
        [helper] = [worker for worker in workers if worker.pid == helper_pid]
        kill_workers([helper])  # its charges at the gateway: left pending, for the janitor
        [survivor] = [worker for worker in workers if worker is not helper]
        settle(app, [survivor])
    finally:
        outcomes = stop_workers([survivor])
    assert [code for code, _ in outcomes] == [0], outcomes[0][1][-2000:]
    err = outcomes[0][1]
    # The dead worker's helper, stalled, was put back in the shared queue (the tick, waiting
    # for it, then deleted it or the survivor ran it); the dead worker's pending charges were
    # settled by the survivor's payment batch; every renewal charged once.
    retried = [json.loads(line) for line in err.splitlines() if '"stalled job retried"' in line]
    assert "slices" in [line["task"] for line in retried]
    assert 0 < collected_by(err) < 12
    assert attempts(app) == [("declined", DAY_1)] * 12
    assert sorted(kind for _, kind, _ in emails(app)) == ["payment_failed_1"] * 12


def test_helpers_waiting_in_the_own_queue_of_a_worker_not_alive_go_to_the_shared_queue(databases):
    app = databases.fresh_app("postgresql")
    with app.engine.begin() as conn:
        alive, dead = conn.execute(text(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()), (now() - interval '1 minute') "
            "RETURNING id")).scalars().all()
        conn.execute(text("INSERT INTO worker_queues (worker_id, queue_name) VALUES "
                          "(:alive, 'slices@a@alive'), (:dead, 'slices@d@dead')"), {"alive": alive, "dead": dead})
        jobs = conn.execute(text(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES "
            "('slices@a@alive', 'slices', '{}', 'todo'), ('slices@d@dead', 'slices', '{}', 'todo'), "
            "('slices@gone', 'slices', '{}', 'todo'), ('slices@d@dead', 'slices', '{}', 'doing') "
            "RETURNING id")).scalars().all()
        moved = conn.execute(HELPERS_OF_THE_DEAD, {"shared": SLICES, "seconds": 30}).scalars().all()
        queues = dict(conn.execute(text("SELECT id, queue_name FROM procrastinate_jobs")).all())
    # The dead worker's waiting helper, and one whose worker left no row (stopped): in the shared
    # queue. The live worker's stays its own; a running one is the stalled-job retry's.
    assert sorted(moved) == [jobs[1], jobs[2]]
    assert [queues[job] for job in jobs] == ["slices@a@alive", SLICES, SLICES, "slices@d@dead"]
