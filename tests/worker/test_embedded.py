"""`renewly worker` on SQLite: the ticks run in the worker's process as they come due, with the
outcome of `renewly run` at the same instant; one worker per database file; SIGTERM finishes the
slice in hand and exits 0; a database that cannot be used is looked at again later, not fatal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from renewly.adapters.db.locks import holding_the_worker_lock, worker_lock_beside, worker_lock_path
from renewly.adapters.db.tables import batch_runs, invoices, outbox, payment_attempts
from renewly.scheduler import BATCHES, run_all
from renewly.shared.errors import Conflict
from renewly.worker import embedded
from renewly.worker.embedded import wait_after_failures
from tests.builders import subscribed, team_plan
from tests.payment_builders import CHARGES_DECLINED
from tests.processes import RENEWLY

START = datetime(2026, 1, 1, tzinfo=UTC)
# Slow charges, one at a time: a worker is still at the gateway when the test stops it.
SLOW = {"RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": "300", "RENEWLY_PAYMENTS__SLICE_SIZE": "1",
        "RENEWLY_PAYMENTS__CONCURRENCY": "1"}


def customers(app) -> None:
    """One account that pays, one whose charges are declined (dunning follows), one that starts
    on the 10th: renewals, charges, a case and its e-mails."""
    plan = team_plan(app)
    subscribed(app, plan=plan, name="Acme", owner="owner@acme.test")
    subscribed(app, plan=plan, name="Globex", owner="owner@globex.test", card=CHARGES_DECLINED)
    subscribed(app, plan=plan, name="Initech", owner="owner@initech.test", start=date(2026, 1, 10))


def story(app) -> dict[str, list]:
    """What customers and the gateway see: invoices, charges and their answers, e-mails and events."""
    with app.engine.connect() as conn:
        return {
            "invoices": conn.execute(select(invoices.c.number, invoices.c.account_id, invoices.c.issue_date,
                                            invoices.c.total, invoices.c.status).order_by(invoices.c.id)).all(),
            "attempts": conn.execute(select(payment_attempts.c.invoice_id, payment_attempts.c.number,
                                            payment_attempts.c.amount, payment_attempts.c.status,
                                            payment_attempts.c.decline_code, payment_attempts.c.reason,
                                            payment_attempts.c.created_at).order_by(payment_attempts.c.id)).all(),
            "outbox": conn.execute(select(outbox.c.created_at, outbox.c.topic, outbox.c.account_id,
                                          outbox.c.payload).order_by(outbox.c.id)).all(),
        }


def environment(app, **more: str) -> dict[str, str]:
    return {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
            "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), "RENEWLY_WORKER__CHECK_SECONDS": "1",
            **more}


def renewly(app, *arguments: str, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RENEWLY), *arguments], env=environment(app, **more), capture_output=True, text=True,
                          timeout=60)


def start_worker(app, **more: str) -> subprocess.Popen:
    """A worker process, once it holds its database's lock (the pid it writes there)."""
    worker = subprocess.Popen([str(RENEWLY), "worker"], env=environment(app, **more), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lock = worker_lock_path(app.engine)
    deadline = time.monotonic() + 20
    while not (lock.exists() and lock.read_text().strip() == str(worker.pid)):
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker never took its lock"
        time.sleep(0.05)
    return worker


def until(condition, what: str, worker: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, f"the worker never {what}"
        time.sleep(0.05)


def every_batch_ran_at(app, instant: datetime) -> bool:
    with app.engine.connect() as conn:
        ran = dict(conn.execute(select(batch_runs.c.batch, batch_runs.c.last_run_at)).all())
    return all(ran.get(batch.name) == instant for batch in BATCHES)


def stop(worker: subprocess.Popen, how: int = signal.SIGTERM) -> tuple[str, str]:
    worker.send_signal(how)
    return worker.communicate(timeout=30)


def test_a_worker_runs_the_tick_the_test_clock_reaches_with_the_outcome_of_renewly_run_at_that_instant(databases):
    by_worker, by_run = databases.fresh_app("sqlite"), databases.fresh_app("sqlite")
    for app in (by_worker, by_run):
        customers(app)
    worker = start_worker(by_worker)
    until(lambda: every_batch_ran_at(by_worker, START), "ran the first tick", worker)  # the first invoices' charges
    assert renewly(by_run, "run").returncode == 0
    target = START + timedelta(days=35)

    # Time passes without batches, as if nobody ran them: the worker notices and runs the tick.
    assert renewly(by_worker, "clock", "advance", "--days", "35", "--no-batches").returncode == 0
    until(lambda: every_batch_ran_at(by_worker, target), "ran the tick", worker)
    out, err = stop(worker)

    assert renewly(by_run, "clock", "advance", "--days", "35", "--no-batches").returncode == 0
    assert renewly(by_run, "run").returncode == 0
    assert story(by_worker) == story(by_run)
    assert len(story(by_worker)["invoices"]) == 5  # two at the start, three at the tick (below)
    assert {row.topic for row in story(by_worker)["outbox"]} >= {"email", "dunning.case_opened"}
    assert worker.returncode == 0, err
    assert " ".join(out.split()) == ("worker stopped by SIGTERM after the slice in hand: 2 tick(s) ran, the last "
                                     "as of 2026-02-05T00:00:00+00:00; nothing due was left")
    # stderr: the worker's JSON log lines, one per batch run among them.
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["event"] == "worker started" and lines[-1]["event"].startswith("stopping after the slice")
    renew = [(line["at"], line["invoices_issued"]) for line in lines
             if line["event"] == "batch run" and line["batch"] == "renew" and line["invoices_issued"]]
    assert renew == [(target.isoformat(), 3)]


def test_the_worker_runs_each_tick_when_it_comes_due_as_a_test_clock_moves_day_by_day(databases):
    """In process: the worker's nap moves the clock a day, as time would pass between two looks;
    the same days through `renewly run` give the same story."""
    by_worker, by_run = databases.fresh_app("sqlite"), databases.fresh_app("sqlite")
    for app in (by_worker, by_run):
        customers(app)
    days = 40

    def a_day_passes(seconds: float) -> None:
        assert seconds == by_worker.settings.worker.check_seconds
        now = by_worker.clock.now()
        if now >= START + timedelta(days=days):
            by_worker.stop.ask()
        else:
            by_worker.test_clock.set(now + timedelta(days=1))

    report = embedded.run(by_worker, a_day_passes)
    for day in range(days + 1):
        by_run.test_clock.set(START + timedelta(days=day))
        run_all(by_run, by_run.clock.now())

    assert story(by_worker) == story(by_run)
    assert report.ticks[0] == START and report.ticks[-1] <= START + timedelta(days=days)
    assert {row.topic for row in story(by_worker)["outbox"]} >= {"email", "dunning.case_opened", "dunning.steps_taken",
                                                              "payment.declined"}


def test_a_second_worker_on_the_same_database_is_refused_with_one_line(databases):
    app = databases.fresh_app("sqlite")
    first = start_worker(app)

    second = renewly(app, "worker")
    out, err = stop(first)

    database = app.settings.database_url.removeprefix("sqlite:///")
    assert (second.returncode, second.stdout) == (2, "")
    assert second.stderr == (f"error: a worker (pid {first.pid}) already runs on {database}: one worker per SQLite "
                             f"database (it holds {worker_lock_beside(database)})\n")
    assert first.returncode == 0


def test_kill_9_frees_the_database_for_a_new_worker_and_the_lock_file_stays(databases):
    app = databases.fresh_app("sqlite")
    killed = start_worker(app)
    killed.kill()
    killed.wait(timeout=10)

    restarted = start_worker(app)  # takes the lock at once
    stop(restarted)

    assert restarted.returncode == 0
    assert worker_lock_path(app.engine).exists()  # Renewly's own file, never deleted


def test_sigterm_finishes_the_slice_in_hand_leaves_no_charge_pending_and_exits_0(databases):
    app = databases.fresh_app("sqlite")
    plan = team_plan(app)
    for n in range(6):
        subscribed(app, plan=plan, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    worker = start_worker(app, **SLOW)
    until(lambda: succeeded(app) >= 1, "charged", worker)

    out, err = stop(worker)

    assert worker.returncode == 0, err
    assert 1 <= succeeded(app) < 6
    assert unsettled(app) == []  # the slice in hand got its answer before the worker stopped
    # The tick in hand, stopped short: its charges still due (its batches' runs are not recorded).
    assert " ".join(out.split()) == ("worker stopped by SIGTERM after the slice in hand: 1 tick(s) ran, the last "
                                     "as of 2026-01-01T00:00:00+00:00; still due: collect (the next worker or "
                                     "`renewly run` does it)")
    assert "Traceback" not in err
    rest = start_worker(app)  # the next worker does the rest
    until(lambda: succeeded(app) == 6, "charged the rest", rest)
    stop(rest)
    assert unsettled(app) == []


def test_ctrl_c_stops_the_worker_like_a_batch_exit_130(databases):
    app = databases.fresh_app("sqlite")
    worker = start_worker(app)

    out, err = stop(worker, signal.SIGINT)

    assert worker.returncode == 130, err
    assert " ".join(out.split()) == ("worker stopped by SIGINT after the slice in hand: no tick ran; nothing due "
                                     "was left")


def succeeded(app) -> int:
    with app.engine.connect() as conn:
        return len(conn.execute(select(payment_attempts.c.id).where(payment_attempts.c.status == "succeeded")).all())


def unsettled(app) -> list[str]:
    with app.engine.connect() as conn:
        return conn.execute(select(payment_attempts.c.status)
                            .where(payment_attempts.c.status.in_(["pending", "unknown"]))).scalars().all()


def test_a_database_in_memory_is_refused_a_worker(tmp_path):
    refused = subprocess.run([str(RENEWLY), "worker"], env={**os.environ, "RENEWLY_DATABASE_URL": "sqlite://",
                                                            "RENEWLY_CLOCK": "test"},
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith("error: the database is in memory: a worker has nothing to share")
    assert len(refused.stderr.splitlines()) == 1


def test_a_database_that_cannot_be_used_is_looked_at_again_later_each_time_longer(databases, monkeypatch,
                                                                                    capsys):
    app = databases.fresh_app("sqlite", worker={"check_seconds": 5})
    subscribed(app)  # its first invoice is due for its charge
    outages = [OperationalError("SELECT 1", {}, Exception("unable to open database file"))] * 3
    real_tick_due = embedded.tick_due

    def tick_due(application, now):
        if outages:
            raise outages.pop()
        return real_tick_due(application, now)

    monkeypatch.setattr(embedded, "tick_due", tick_due)
    waits = []

    def nap(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 5:
            app.stop.ask()

    from renewly.adapters.logs import configure_command_line_logs
    configure_command_line_logs("json")
    report = embedded.run(app, nap)

    assert waits == [10, 20, 40, 5, 5]  # back to the check's period once the database answers
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["retry_in_seconds"] for line in logged] == [10, 20, 40]
    assert logged[0]["event"] == "the database cannot be used; the worker looks again later"
    assert report.ticks == [START]  # then it ran what was due


def test_the_wait_after_failures_doubles_from_the_check_up_to_five_minutes():
    assert [wait_after_failures(10, n) for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert wait_after_failures(3600, 3) == 3600  # never shorter than the check itself


@pytest.mark.parametrize("database, lock", [("renewly.db", "renewly-worker.lock"),
                                            ("/var/lib/renewly/billing.sqlite", "/var/lib/renewly/billing.sqlite"
                                                                                "-worker.lock")])
def test_the_lock_file_lies_beside_the_database(database, lock):
    assert worker_lock_beside(database) == lock


def test_the_lock_is_held_once_in_one_process_too(databases):
    app = databases.fresh_app("sqlite")
    with holding_the_worker_lock(app.engine):
        with pytest.raises(Conflict, match="already runs on"):
            with holding_the_worker_lock(app.engine):
                pass
