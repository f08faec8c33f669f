"""`renewly worker` on PostgreSQL (renewly/worker/queue.py): procrastinate workers run the ticks.

The R8 story of two accounts driven by workers while the test only moves the test clock gives the
same e-mails, attempts and dates as `renewly run` at the same instants; follow-up work is queued
in the transaction that makes it due; a worker killed mid-tick loses nothing (another retries its
stalled tick); SIGTERM stops a worker cleanly.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select, text

from renewly.adapters.db.tables import dunning_steps, invoices, outbox, payment_attempts
from renewly.billing.renewals import RenewalReport
from renewly.payments.collect import CollectReport
from renewly.scheduler import advance, merged, run_all, tick_due
from renewly.worker.queue import HELPERS_STILL_RUNNING, _counts, _FanOut, _report, look_cron, queue_status
from tests.builders import customer, subscribed, team_plan, with_card
from tests.conftest import START
from tests.worker.workers import kill_workers, settle, start_workers, stop_workers, wait_for

pytestmark = pytest.mark.postgres_only

DECLINES = "4000000000000341"  # the card check passes, every charge is declined
CARD_FIXED = START + timedelta(days=3, hours=10, minutes=30)  # Boulangerie's owner saves a good card
LAST = START + timedelta(days=35)


def two_accounts(app) -> None:
    """Globex is declined until cancelled (R8.1-R8.5); Boulangerie is declined, then fixes its card
    on day 3 (R7.1, R8.6)."""
    plan = team_plan(app)
    subscribed(app, card=DECLINES, plan=plan, name="Globex", owner="owner@globex.test")
    subscribed(app, card=DECLINES, plan=plan, name="Boulangerie", owner="owner@boulangerie.test")


def fix_card(app) -> None:
    with_card(app, 2, owner="owner@boulangerie.test")


def story(app) -> dict[str, list]:
    """What customers and the gateway saw, and when: every outbox row (an e-mail by its kind and
    recipients), every attempt, every dunning step."""
    with app.engine.connect() as conn:
        return {
            "outbox": [(row.topic, row.account_id, row.created_at,
                        (row.payload["kind"], row.payload.get("to")) if row.topic == "email" else None)
                       for row in conn.execute(select(outbox).order_by(outbox.c.id))],
            "attempts": conn.execute(select(payment_attempts.c.invoice_id, payment_attempts.c.status,
                                            payment_attempts.c.created_at).order_by(payment_attempts.c.id)).all(),
            "steps": conn.execute(select(dunning_steps.c.case_id, dunning_steps.c.name, dunning_steps.c.taken_at)
                                  .order_by(dunning_steps.c.id)).all(),
            "invoices": conn.execute(select(invoices.c.number, invoices.c.status, invoices.c.issued_at)
                                     .order_by(invoices.c.id)).all(),
        }


def move_clock_to(app, instant: datetime) -> None:
    """The test clock moved as if the service were down: no batch runs (the workers do)."""
    if instant > app.clock.now():
        advance(app, instant - app.clock.now(), run_batches=False)


def test_r8_story_driven_by_workers_is_the_story_of_renewly_run_at_the_same_instants(databases):
    # The instants with work: the ticks a test-clock advance walks through (a SQLite reference).
    walked = databases.fresh_app("sqlite")
    two_accounts(walked)
    run_all(walked, START)  # the day-0 renewals are due as the workers start
    ticks = [START] + [run.at for run in advance(walked, CARD_FIXED - START).runs]
    fix_card(walked)
    ticks += [run.at for run in advance(walked, LAST - CARD_FIXED).runs]
    instants = sorted(set(ticks) | {CARD_FIXED})

    # `renewly run` at each of those instants.
    ran = databases.fresh_app("sqlite")
    two_accounts(ran)
    for instant in instants:
        move_clock_to(ran, instant)
        if instant == CARD_FIXED:
            fix_card(ran)  # between two ticks
        else:
            run_all(ran, instant)

    # Two workers, the test moving only the clock, waiting at each instant for them to settle.
    app = databases.fresh_app("postgresql")
    two_accounts(app)
    workers = start_workers(app, 2)
    try:
        for instant in instants:
            move_clock_to(app, instant)
            if instant == CARD_FIXED:
                fix_card(app)
            settle(app, workers)
    finally:
        outcomes = stop_workers(workers)
    assert [code for code, _ in outcomes] == [0, 0], outcomes[0][1][-2000:]

    expected = story(ran)
    assert story(walked) == expected
    assert story(app) == expected
    # The story itself (R8, R7.1): what Globex (1) and Boulangerie (2) were told, and when.
    assert [(account, kind, at.isoformat()[:16]) for account, kind, at in emails(app)] == [
        (1, "payment_failed_1", "2026-01-01T00:00"), (2, "payment_failed_1", "2026-01-01T00:00"),
        (1, "payment_failed_2", "2026-01-03T00:00"), (2, "payment_failed_2", "2026-01-03T00:00"),
        (2, "payment_confirmed", "2026-01-04T11:00"),  # the next payment tick after the card, not before it
        (1, "payment_failed_3", "2026-01-05T00:00"), (1, "suspension_warning", "2026-01-22T00:00"),
        (1, "account_cancelled", "2026-01-30T00:00")]


def test_r7_1_a_card_update_queues_its_follow_up_in_its_own_transaction(databases):
    app = databases.fresh_app("postgresql")
    account_id = customer(app, name="Boulangerie", owner="owner@boulangerie.test")
    subscribed_at = START
    with_card(app, account_id, DECLINES, owner="owner@boulangerie.test")
    from renewly.billing.subscriptions import create_subscription
    create_subscription(app, account_id, plan_code=team_plan(app), seats=1, start=subscribed_at.date(),
                        actor="test:operator")
    run_all(app, START)  # the first charge is declined: an unpaid invoice
    move_clock_to(app, START + timedelta(hours=3, minutes=20))
    assert follow_ups(app) == []

    with_card(app, account_id, owner="owner@boulangerie.test")  # R7.1: the next payment batch retries
    # For the payment batch's next tick (hourly: 04:00), written with the card.
    assert follow_ups(app) == ["2026-01-01T04:00:00+00:00"]

    # A transaction that rolls back takes its follow-up with it.
    with pytest.raises(RuntimeError), app.engine.begin() as conn:
        app.follow_ups.work_due(conn, "collect", START + timedelta(hours=5))
        assert len(follow_ups(app, conn)) == 2
        raise RuntimeError("the card could not be saved")
    assert follow_ups(app) == ["2026-01-01T04:00:00+00:00"]
    # A second one for the same tick is one job; the caller's transaction goes on.
    with app.engine.begin() as conn:
        app.follow_ups.work_due(conn, "collect", START + timedelta(hours=3, minutes=40))
        conn.execute(text("SELECT 1"))
    assert follow_ups(app) == ["2026-01-01T04:00:00+00:00"]

    assert queue_status(app).describe() == ["queue: 0 live worker(s)",
                                            "  follow_up: 1 queued, 0 running, 0 failed"]

    # A worker charges the retry at 04:00, not before, though its job is there at 03:20.
    workers = start_workers(app)
    try:
        wait_for(lambda: queue_status(app).live_workers == 1, workers, "no live worker")
        settle(app, workers)
        assert attempts(app) == [("declined", START)]
        move_clock_to(app, START + timedelta(hours=4))
        settle(app, workers)
    finally:
        outcomes = stop_workers(workers)
    assert [code for code, _ in outcomes] == [0]
    assert attempts(app) == [("declined", START), ("succeeded", START + timedelta(hours=4))]


def follow_ups(app, conn=None) -> list[str]:
    query = text("SELECT args->>'at' FROM procrastinate_jobs WHERE task_name = 'follow_up' AND status = 'todo' "
                 "ORDER BY id")
    if conn is not None:
        return list(conn.execute(query).scalars())
    with app.engine.connect() as fresh:
        return list(fresh.execute(query).scalars())


def attempts(app) -> list[tuple]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(payment_attempts.c.status, payment_attempts.c.created_at)
                                                   .order_by(payment_attempts.c.id))]


def emails(app) -> list[tuple]:
    with app.engine.connect() as conn:
        return [(row.account_id, row.payload["kind"], row.created_at)
                for row in conn.execute(select(outbox).where(outbox.c.topic == "email").order_by(outbox.c.id))
                if row.payload["kind"] != "invoice"]  # the dunning e-mails: not the invoices' (R4.3)


def held_at_the_gate(app, holder, workers, table: str = "payment_attempts") -> None:
    """Lock `table` against writers and wait until a worker's tick waits for it: mid-tick."""
    holder.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
    wait_for(lambda: _waiting_on(app, table), workers, f"no tick ever waited at {table}")


def _waiting_on(app, table: str) -> bool:
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = CAST(:t AS regclass)"),
                            {"t": table}).scalar_one() > 0


def three_declined(app) -> None:
    """Three accounts whose day-0 renewals are due as the workers start, each charge declined."""
    plan = team_plan(app)
    for number in range(3):
        subscribed(app, card=DECLINES, plan=plan, name=f"Acme {number}", owner=f"owner@acme{number}.test")


def test_a_worker_killed_mid_tick_loses_nothing_another_retries_its_stalled_tick(databases):
    app = databases.fresh_app("postgresql")
    three_declined(app)
    # Its charges may be at the gateway when it dies: their pending attempts are settled by the
    # next payment batch's janitor once their lease ends (two seconds here, not fifteen minutes).
    lease = {"RENEWLY_PAYMENTS__LEASE_SECONDS": "2"}
    first = start_workers(app, RENEWLY_WORKER__SLICE_HELPERS="0", **lease)
    with app.engine.connect() as holder:
        held_at_the_gate(app, holder, first)  # its tick is charging the three renewals
        kill_workers(first)
        holder.rollback()
    assert tick_due(app, app.clock.now()) is not None  # the tick did not finish: its work is due
    with app.engine.connect() as conn:
        stalled = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'tick' "
                                    "AND status = 'doing'")).scalar_one()
    assert stalled == 1
    second = start_workers(app, **lease)
    try:
        settle(app, second)
    finally:
        outcomes = stop_workers(second)
    assert [code for code, _ in outcomes] == [0]
    # Put back in the queue, or ended for the tick a look deferred again meanwhile.
    assert "stalled job retried" in outcomes[0][1] or "stalled job dropped" in outcomes[0][1]
    # Exactly once: one declined attempt and one failure e-mail per account, at the tick.
    assert attempts(app) == [("declined", START)] * 3
    assert sorted((account, kind) for account, kind, _ in emails(app)) == [
        (account, "payment_failed_1") for account in (1, 2, 3)]


def test_r8_1_a_worker_killed_at_the_gateway_has_its_charges_settled_by_the_tick_run_again_at_its_date(databases):
    app = databases.fresh_app("postgresql")
    three_declined(app)
    # The production lease (fifteen minutes): the dead worker's pending charges name it, and the
    # tick run again once it is taken for dead (two seconds of silence here) settles them at
    # once, at the tick's date; before, they waited for their lease, then the next payment batch.
    assert app.settings.payments.lease_seconds == 900
    at_the_gateway = {"RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": "5000", "RENEWLY_WORKER__SLICE_HELPERS": "0"}
    first = start_workers(app, **at_the_gateway)
    wait_for(lambda: attempts(app) == [("pending", START)] * 3, first, "the charges never left")
    kill_workers(first)
    second = start_workers(app)
    try:
        settle(app, second, timeout=30)
    finally:
        assert [code for code, _ in stop_workers(second)] == [0]
    assert attempts(app) == [("declined", START)] * 3
    assert sorted(emails(app)) == [(account, "payment_failed_1", START) for account in (1, 2, 3)]


def signalled_mid_tick(app, *signals: int, let_go: bool) -> tuple[int, str, str]:
    """One worker, mid-tick (the payment batch's slice, charged, waits at a lock on the outbox to
    record its answers' events), sent `signals` a second apart; the lock let go then (`let_go`),
    or only once the worker has exited. Its exit code, stdout and stderr."""
    three_declined(app)
    [worker] = start_workers(app, RENEWLY_WORKER__SLICE_HELPERS="0")
    with app.engine.connect() as holder:
        held_at_the_gate(app, holder, [worker], "outbox")
        for number in signals:
            worker.send_signal(number)
            time.sleep(1)
        if let_go:
            holder.rollback()
        out, err = worker.communicate(timeout=30)
    return worker.returncode, out, err


def test_sigterm_finishes_the_slice_in_hand_and_exits_0(databases):
    app = databases.fresh_app("postgresql")
    code, out, err = signalled_mid_tick(app, signal.SIGTERM, let_go=True)
    assert code == 0, err[-2000:]
    assert '"worker stopped"' in err
    # Its last line says what it left, as the embedded worker's does.
    assert " ".join(out.split()) == ("worker stopped by SIGTERM after the slice in hand; still due: dunning (the "
                                     "next worker or `renewly run` does it)")
    # The slice in hand was finished (its three declines recorded); the tick went no further
    # (dunning has not told anyone), left that work due, and no job is left running.
    assert attempts(app) == [("declined", START)] * 3
    assert emails(app) == []
    assert tick_due(app, app.clock.now()) == START
    with app.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")).scalar_one() == 0
    again = start_workers(app)
    try:
        settle(app, again)
    finally:
        assert [code for code, _ in stop_workers(again)] == [0]
    assert attempts(app) == [("declined", START)] * 3
    assert sorted((account, kind) for account, kind, _ in emails(app)) == [
        (account, "payment_failed_1") for account in (1, 2, 3)]


def test_a_second_signal_stops_a_worker_at_once_exit_130_its_charges_left_to_the_janitor(databases):
    app = databases.fresh_app("postgresql")
    # Its slice waits on a lock that is not let go: only a stop at once ends it.
    code, out, err = signalled_mid_tick(app, signal.SIGINT, signal.SIGINT, let_go=False)
    assert code == 130, err[-2000:]
    assert "stopping after the slice in hand" in err and "stopped at once by a second signal" in err
    assert out == ""
    # The slice's transaction was rolled back: its charges stay pending, for the janitor.
    assert attempts(app) == [("pending", START)] * 3


def test_the_look_is_a_cron_line_of_seconds_under_a_minute_and_of_minutes_from_one_on():
    assert look_cron(10) == "* * * * * */10"
    assert look_cron(59) == "* * * * * */59"
    assert look_cron(90) == "*/1 * * * *"
    assert look_cron(600) == "*/10 * * * *"
    assert look_cron(3600) == "0 * * * *"


def test_a_tick_shares_its_slices_with_a_helper_on_the_other_worker_and_counts_its_work(databases):
    app = databases.fresh_app("postgresql")
    plan = team_plan(app)
    day_1 = START + timedelta(days=1)
    for number in range(24):
        subscribed(app, card=DECLINES, plan=plan, start=day_1.date(), name=f"Acme {number}",
                   owner=f"owner@acme{number}.test")
    # Small slices at a slow gateway: the tick is still charging when the other worker's helper
    # starts; the declines they record make dunning's work, which the chain's next round does.
    workers = start_workers(app, 2, RENEWLY_PAYMENTS__SLICE_SIZE="2", RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS="50")
    try:
        settle(app, workers)
        move_clock_to(app, day_1)  # both workers are up: the renewals' tick has a helper
        settle(app, workers)
    finally:
        outcomes = stop_workers(workers)
    assert [code for code, _ in outcomes] == [0, 0]
    logs = [json.loads(line) for _, err in outcomes for line in err.splitlines() if line.startswith("{")]
    collected = [line for line in logs if line.get("event") == "batch run" and line["batch"] == "collect"]
    assert sum(line["attempted"] for line in collected if line["task"] == "slices") > 0
    assert sum(line["attempted"] for line in collected) == 24
    assert attempts(app) == [("declined", day_1)] * 24
    assert sorted((kind, at) for _, kind, at in emails(app)) == [("payment_failed_1", day_1)] * 24
    # No helper failed: the renewals' helpers, too, gave their reports to the tick.
    assert [(item.task, item.failed) for item in queue_status(app).jobs if item.failed] == []


def test_a_renewal_helpers_report_goes_through_json_and_adds_to_the_ticks():
    # Its instant (a datetime, which JSON cannot hold) is not stored: the tick's own is the same.
    own = RenewalReport(invoices_issued=3, subscriptions_renewed=3, as_of=START)
    helper = RenewalReport(invoices_issued=2, subscriptions_renewed=2, as_of=START, parked=1)
    saved = json.loads(json.dumps(_counts(helper)))
    assert _report(saved, own) == helper
    assert merged([own, _report(saved, own)]) == RenewalReport(invoices_issued=5, subscriptions_renewed=5,
                                                               as_of=START, parked=1)


def test_a_tick_deletes_the_helpers_no_worker_took_and_waits_for_the_others_in_one_query_a_look(databases):
    app = databases.fresh_app("postgresql")
    with app.engine.begin() as conn:
        waiting, taken, started = conn.execute(text(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES "
            "('slices', 'slices', '{}', 'todo'), ('slices', 'slices', '{}', 'doing'), "
            "('slices', 'slices', '{}', 'doing') RETURNING id")).scalars().all()

    def helpers_finish() -> None:  # the two started helpers report, a few looks later
        time.sleep(0.3)
        with app.engine.begin() as conn:
            for job_id, attempted in ((taken, 2), (started, 5)):
                conn.execute(text("INSERT INTO worker_helper_reports (job_id, batch, at, report) "
                                  "VALUES (:id, 'collect', now(), CAST(:report AS jsonb))"),
                             {"id": job_id, "report": json.dumps({"attempted": attempted})})
            conn.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id IN (:a, :b)"),
                         {"a": taken, "b": started})

    statements: list[str] = []
    tick = threading.get_ident()

    def seen(conn, cursor, statement, *_) -> None:
        if threading.get_ident() == tick:  # the tick's, not the helpers'
            statements.append(statement)

    finishing = threading.Thread(target=helpers_finish)
    own = CollectReport(attempted=3)
    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        finishing.start()
        reports, left_work = _FanOut(SimpleNamespace(app=app), loop=None)._helpers_reports(
            [waiting, taken, started], own)
    finally:
        finishing.join()
        event.remove(app.engine, "before_cursor_execute", seen)
    with app.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE id = :id"), {"id": waiting})
        assert left.scalar_one() == 0  # never started: deleted, not left to pile up
    assert sorted(report.attempted for report in reports) == [2, 5] and not left_work
    looks = [s for s in statements if s == str(HELPERS_STILL_RUNNING.compile(dialect=app.engine.dialect))]
    assert len(looks) > 1  # it waited, looking again
    assert statements == looks + [
        "DELETE FROM worker_helper_reports WHERE job_id = ANY(%(ids)s) RETURNING job_id, report"]


@pytest.mark.parametrize(("jobs", "reported", "left_work"), [
    ([("todo", 0)], [], False),  # never started: the tick's own run did the work
    ([("todo", 1)], [], True),  # its worker died with it: put back by the stalled-job retry
    ([("failed", 1)], [], True),  # failed (the database refused it a connection)
    ([("todo", 1)], [0], False),  # killed after its report: its work was done
    ([("todo", 0), ("failed", 1)], [], True),
])
def test_a_helper_that_ended_without_its_report_says_its_batch_left_work_at_the_tick(databases, jobs, reported,
                                                                                    left_work):
    app = databases.fresh_app("postgresql")
    with app.engine.begin() as conn:
        ids = [conn.execute(text("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts) "
                                 "VALUES ('slices', 'slices', '{}', CAST(:status AS procrastinate_job_status), "
                                 ":attempts) RETURNING id"), {"status": status, "attempts": attempts}).scalar_one()
               for status, attempts in jobs]
        for index in reported:
            conn.execute(text("INSERT INTO worker_helper_reports (job_id, batch, at, report) "
                              "VALUES (:id, 'collect', now(), CAST('{\"attempted\": 1}' AS jsonb))"),
                         {"id": ids[index]})
    _, said = _FanOut(SimpleNamespace(app=app), loop=None)._helpers_reports(ids, CollectReport())
    assert said is left_work
    with app.engine.connect() as conn:  # none waits in the queue any more
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")).scalar_one() == 0
