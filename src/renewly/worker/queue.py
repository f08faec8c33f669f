"""`renewly worker` on PostgreSQL: a procrastinate worker that runs the batches' ticks.

Any number of workers, on any number of machines, share one database and its job queue
(procrastinate's tables, migration 0014). What they run:

- **look** (periodic, every `worker.check_seconds` on the system clock): one `scheduler.tick_due`
  query set; when a tick T is due at the app clock's now, it defers a `tick` job for T.
  procrastinate runs each periodic instant once among all the workers; the tick job's queueing
  lock `tick` keeps at most one tick waiting, its lock `tick` keeps ticks from running at once.
- **tick** (queue `ticks`): `scheduler.run_tick(app, T)`, never before the app clock reaches T,
  and not at all when nothing is due at T any more (a later tick did it). As each batch of the
  tick starts, it defers helper `slices` jobs for that batch and instant, one to each other live
  worker (at most `worker.slice_helpers`), and runs the batch itself; the batches claim their
  slices with SKIP LOCKED and leases, so tick and helpers share the work. Before the tick goes on
  to its next batch, it cancels the helpers no worker has started and waits for the others, and
  adds their reports (table `worker_helper_reports`) to its own: the chain's next round depends
  on what all of them did, and the chain's order within a tick holds. A helper that ended
  without its report (its worker killed, or the job failed) may have left work in hand, its
  charges at the gateway: the batch is then not recorded as run at T (`BatchRun.left_work`), and
  the next look runs the tick again at T, whose janitor settles them once their lease has ended.
  One to each worker: every worker listens, beside the shared queues, on a queue of its own
  (`slices@...`, table `worker_queues`, migration 0019), and the tick defers each helper to
  another live worker's own queue: procrastinate hands a job to whichever worker fetches it
  first, so helpers on one shared queue went two to one worker (it runs `JOBS_AT_ONCE`) and none
  to another.
- **follow_up** (queue `ticks`): written by renewly.worker.follow_ups in the transaction that
  makes work due (a card update's retry, R7.1), for the batch's next tick; early (a test clock
  behind it), it waits and looks again; then it defers the tick.
- **retry_stalled** (periodic): procrastinate does not retry by itself the jobs of a worker that
  died (kill -9, a machine lost); this puts back the jobs of workers silent for
  `worker.stalled_seconds` (or ends one, aborted, whose twin waits already: a tick the looks
  deferred again meanwhile, under the same queueing lock). A tick run again finds its batches'
  work where the dead one left it, and their idempotency keeps every invoice, charge and e-mail
  exactly once. A helper put back goes to the shared `slices` queue, any worker's; and so do the
  helpers waiting in the own queue of a worker no longer alive (`HELPERS_OF_THE_DEAD`): the tick
  that deferred them deletes them once its own run is done, unless a worker took them first.

SIGTERM or SIGINT asks the app to stop (`Ports.stop`): the batch in hand finishes its slice and
stops, the worker takes no other job and exits; a tick stopped short leaves its work due, for
the next look to find. A second signal stops the process at once (exit 130), as a second Ctrl-C
stops a batch: the batches' work runs in threads that no exception reaches, so the process ends
there; the database rolls back the transactions in hand, and the job left running is retried
once stalled, as after a kill -9.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException, UniqueViolation
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status
from procrastinate.worker import Worker
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from renewly import scheduler
from renewly.adapters.logs import renderer
from renewly.batches.reports import BatchFailed, BatchReport
from renewly.ports import Ports

log = structlog.get_logger(__name__)

TICKS, SLICES, PERIODIC = "ticks", "slices", "periodic"
QUEUES = (TICKS, SLICES, PERIODIC)
TICK_LOCK = "tick"
# Jobs a worker runs at once: a tick or a helper, and beside it the periodic looks, follow-ups,
# or a helper of its own tick (the batches' work runs in threads; the gateway calls of a payment
# batch have their own pool, `payments.concurrency`).
JOBS_AT_ONCE = 2
HELPER_POLL_SECONDS = 0.05  # how often a tick looks whether its helpers are done
# The helpers among :ids not finished (`lost` false: waited for), those waiting deleted first
# (the statement's snapshot still shows them `todo`: hence the NOT IN). Deleted, not marked
# cancelled, as procrastinate's cancel_job(delete_job=True) does: a tick leaves up to
# `slice_helpers` of them, and marked rows would pile up in the job table by the hundred a day.
# One started meanwhile is not touched, and is waited for. `lost` true: a helper that ended
# without finishing, which may have left work in hand: failed, or put back after its worker died
# (a stalled job retried: attempts counted) and deleted here.
HELPERS_STILL_RUNNING = text(
    "WITH cancelled AS (DELETE FROM procrastinate_jobs WHERE id = ANY(:ids) AND status = 'todo' "
    "RETURNING id, attempts) "
    "SELECT id, status = 'failed' AS lost FROM procrastinate_jobs WHERE id = ANY(:ids) "
    "AND status IN ('todo', 'doing', 'failed') AND id NOT IN (SELECT id FROM cancelled) "
    "UNION ALL SELECT id, true FROM cancelled WHERE attempts > 0")
# The live workers' own queues, the tick's worker's aside: one helper each, at most :helpers of
# them, chosen at random when there are more (a worker alive: its heartbeat within :seconds).
LIVE_OWN_QUEUES = text(
    "SELECT q.queue_name FROM worker_queues AS q JOIN procrastinate_workers AS w ON w.id = q.worker_id "
    "WHERE w.last_heartbeat > now() - make_interval(secs => :seconds) AND q.queue_name <> :own "
    "ORDER BY random() LIMIT :helpers")
# Helpers waiting in the own queue of a worker not alive (dead, or stopped since it was chosen):
# moved to the shared queue, where any worker takes them (an UPDATE: procrastinate tells no
# listener, its workers find them at their next fetch).
HELPERS_OF_THE_DEAD = text(
    "UPDATE procrastinate_jobs AS j SET queue_name = :shared WHERE j.task_name = 'slices' AND j.status = 'todo' "
    "AND j.queue_name <> :shared AND NOT EXISTS (SELECT FROM worker_queues AS q "
    "JOIN procrastinate_workers AS w ON w.id = q.worker_id WHERE q.queue_name = j.queue_name "
    "AND w.last_heartbeat > now() - make_interval(secs => :seconds)) RETURNING j.id")


def conninfo(database_url: str) -> str:
    """libpq's form of the database URL (postgresql+psycopg://... -> postgresql://...)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def job_queue(app: Ports, own_queue: str = "") -> procrastinate.App:
    """The procrastinate App of these tasks, on the app's database; opened by `run_worker` (with
    the worker's `own_queue`), used unopened to write a job on a caller's connection
    (renewly.worker.follow_ups)."""
    queue = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo(app.settings.database_url), min_size=1, max_size=4 + JOBS_AT_ONCE))
    _Tasks(app, queue, own_queue).register()
    return queue


def own_queue_name(worker_name: str) -> str:
    """A worker's own queue: random first (unique whatever the host and pid, a container's pid 1
    on every machine), then the worker's name for whoever reads the job table; 128 at most."""
    return f"{SLICES}@{secrets.token_hex(6)}@{worker_name}"[:128]


def follow_up_options(app: Ports, at: datetime) -> dict[str, Any]:
    """How a follow-up for the tick at `at` is deferred: one per instant; on the system clock not
    before it (a test clock's instant is no wall-clock time: its job looks at once, and waits)."""
    options: dict[str, Any] = {"queueing_lock": f"follow-up:{at.isoformat()}", "task_kwargs": {"at": at.isoformat()}}
    if app.test_clock is None:
        options["schedule_at"] = at
    return options


def look_cron(check_seconds: int) -> str:
    """procrastinate's cron line for a look every `check_seconds`: under a minute, the sixth
    column in seconds (`*/10`); from a minute on, whole minutes (`*/5`), an hour at most."""
    if check_seconds < 60:
        return f"* * * * * */{check_seconds}"
    minutes = check_seconds // 60
    return "0 * * * *" if minutes >= 60 else f"*/{minutes} * * * *"


class _Tasks:
    """The tasks, bound to one app and its queue."""

    def __init__(self, app: Ports, queue: procrastinate.App, own_queue: str) -> None:
        self.app, self.queue, self.own_queue = app, queue, own_queue

    def register(self) -> None:
        settings = self.app.settings.worker
        every = look_cron(settings.check_seconds)
        self.look = self.queue.periodic(cron=every, periodic_id="look", queueing_lock="look")(
            self.queue.task(name="look", queue=PERIODIC)(self._look))
        self.retry_stalled = self.queue.periodic(cron=every, periodic_id="retry_stalled",
                                                 queueing_lock="retry_stalled")(
            self.queue.task(name="retry_stalled", queue=PERIODIC)(self._retry_stalled))
        self.tick = self.queue.task(name="tick", queue=TICKS, pass_context=True)(self._tick)
        self.slices = self.queue.task(name="slices", queue=SLICES, pass_context=True)(self._slices)
        self.follow_up = self.queue.task(name="follow_up", queue=TICKS)(self._follow_up)

    # --- the jobs (on the worker's event loop; the batches' work in a thread) ---

    async def _look(self, timestamp: int) -> None:
        due = await asyncio.to_thread(lambda: scheduler.tick_due(self.app, self.app.clock.now()))
        if due is not None:
            await self.defer_tick(due)

    async def defer_tick(self, at: datetime) -> None:
        try:
            await self.tick.configure(lock=TICK_LOCK, queueing_lock=TICK_LOCK,
                                      task_kwargs={"at": at.isoformat()}).defer_async()
        except AlreadyEnqueued:
            pass  # a tick waits already: it runs what is due by its instant, the next look the rest

    async def _tick(self, context: JobContext, at: str) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._run_tick, loop, context.job.id, datetime.fromisoformat(at))

    async def _slices(self, context: JobContext, batch: str, at: str) -> None:
        await asyncio.to_thread(self._take_slices, context.job.id, batch, datetime.fromisoformat(at))

    async def _follow_up(self, at: str) -> None:
        instant = datetime.fromisoformat(at)
        now = await asyncio.to_thread(self.app.clock.now)
        if instant <= now:
            await self.defer_tick(instant)
            return
        # Its tick has not come (a test clock behind it, or a wall clock a little off): look again
        # later, never run it early.
        wait = ((instant - now).total_seconds() if self.app.test_clock is None
                else self.app.settings.worker.check_seconds)
        try:
            await self.follow_up.configure(queueing_lock=f"follow-up:{at}", task_kwargs={"at": at},
                                           schedule_in={"seconds": max(round(wait), 1)}).defer_async()
        except AlreadyEnqueued:
            pass

    async def _retry_stalled(self, timestamp: int) -> None:
        manager = self.queue.job_manager
        seconds = self.app.settings.worker.stalled_seconds
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            try:
                # A helper goes back to the shared queue: its worker's own one has nobody to take it.
                await manager.retry_job(job, queue=SLICES if job.task_name == "slices" else None)
            except UniqueViolation:
                # The same job waits already (its queueing lock: a look deferred the tick again
                # while this one was stalled), and does its work: this one ends, aborted.
                await manager.finish_job(job, status=Status.ABORTED, delete_job=False)
                log.warning("stalled job dropped: the same job waits", job_id=job.id, task=job.task_name,
                            worker_id=job.worker_id)
                continue
            except ConnectorException as error:
                # Another worker put it back first, or it ended meanwhile; or the database refused
                # (rights, a lost connection): said, not swallowed, and the next look tries again.
                log.warning("stalled job not retried", job_id=job.id, task=job.task_name, reason=str(error))
                continue
            log.warning("stalled job retried", job_id=job.id, task=job.task_name, worker_id=job.worker_id)
        moved = await asyncio.to_thread(self._shared_helpers_of_the_dead, seconds)
        if moved:
            log.warning("helpers of a worker not alive moved to the shared queue", job_ids=moved)

    def _shared_helpers_of_the_dead(self, seconds: float) -> list[int]:
        with self.app.engine.begin() as conn:
            return list(conn.execute(HELPERS_OF_THE_DEAD, {"shared": SLICES, "seconds": seconds}).scalars())

    # --- the work, in a thread ---

    def _run_tick(self, loop: asyncio.AbstractEventLoop, job_id: int | None, at: datetime) -> None:
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(job_id=job_id, task="tick"):
            if at > self.app.clock.now():
                # Never before the app clock reaches its instant: a follow-up waits for it.
                _on_loop(loop, self.follow_up.configure(**follow_up_options(self.app, at)).defer_async(),
                         ignore=AlreadyEnqueued)
                return
            if scheduler.tick_due(self.app, at) is None:
                return  # a tick at this instant or later did it all
            runs = scheduler.run_tick(self.app, at, runner=_FanOut(self, loop))
            log.info("job done", task="tick", at=at, seconds=round(time.perf_counter() - started, 3),
                     batches=len(runs), stopped=self.app.stop.asked,
                     did_anything=sum(run.report.did_anything for run in runs))

    def _take_slices(self, job_id: int | None, batch: str, at: datetime) -> None:
        with structlog.contextvars.bound_contextvars(job_id=job_id, task="slices"):
            if self.app.stop.asked or at > self.app.clock.now():
                report: dict[str, Any] = {"did_anything": False, "skipped": True}
            else:
                # Not recorded as run: its tick records its batches when it ends.
                run = scheduler.run_batch(self.app, scheduler.batch_named(batch), at)
                report = ({"failed": run.report.reason} if isinstance(run.report, BatchFailed)
                          else _counts(run.report))
            with self.app.engine.begin() as conn:
                # A helper killed after this commit but before procrastinate marked its job done is
                # run again (a stalled job retried) under the same id: the first report, of the run
                # that did the work, stands; the second finds that work done.
                conn.execute(text("INSERT INTO worker_helper_reports (job_id, batch, at, report) "
                                  "VALUES (:job_id, :batch, :at, :report) ON CONFLICT (job_id) DO NOTHING")
                             .bindparams(bindparam("report", type_=JSONB)),
                             {"job_id": job_id, "batch": batch, "at": at, "report": report})


class _FanOut:
    """A tick's way of running one batch: helpers deferred for the other live workers, the batch
    run here, the helpers not started cancelled and the others waited for, their reports added."""

    def __init__(self, tasks: _Tasks, loop: asyncio.AbstractEventLoop) -> None:
        self.tasks, self.app, self.loop = tasks, tasks.app, loop

    def __call__(self, batch: scheduler.Batch, at: datetime) -> scheduler.BatchRun:
        helpers = self._defer_helpers(batch, at)
        own = scheduler.run_batch(self.app, batch, at)
        if not helpers:
            return own
        reports, left_work = self._helpers_reports(helpers, own.report)
        return scheduler.BatchRun(batch.name, at, scheduler.merged([own.report, *reports]), finished=own.finished,
                                  left_work=left_work)

    def _defer_helpers(self, batch: scheduler.Batch, at: datetime) -> list[int]:
        settings = self.app.settings.worker
        if settings.slice_helpers == 0 or self.app.stop.asked:
            return []
        with self.app.engine.connect() as conn:
            work_at = batch.next_work_at(conn, self.app)
            if work_at is None or work_at > at:
                return []  # nothing for helpers to take
            others = conn.execute(LIVE_OWN_QUEUES, {"seconds": settings.stalled_seconds, "own": self.tasks.own_queue,
                                                    "helpers": settings.slice_helpers}).scalars().all()
        kwargs: dict[str, Any] = {"batch": batch.name, "at": at.isoformat()}
        return [_on_loop(self.loop, self.tasks.slices.configure(queue=other, task_kwargs=kwargs).defer_async())
                for other in others]

    def _helpers_reports(self, helpers: list[int], own: BatchReport) -> tuple[list[BatchReport], bool]:
        """The helpers' reports, once none is running; and whether one of them ended without its
        report, its work in hand perhaps left undone (a worker killed, a helper failed)."""
        waiting, lost = set(helpers), set()
        while waiting:
            # One query a look, whatever the number of helpers: those no worker has started are
            # deleted (it may be a stalled one, put back), what procrastinate's cancel_job does;
            # the others, still running, are waited for: each stops when the batch has no slice
            # left (or when asked to stop).
            with self.app.engine.begin() as conn:
                rows = conn.execute(HELPERS_STILL_RUNNING, {"ids": sorted(waiting)}).all()
            waiting = {job_id for job_id, gone in rows if not gone}
            lost |= {job_id for job_id, gone in rows if gone}
            if waiting:
                time.sleep(HELPER_POLL_SECONDS)
        with self.app.engine.begin() as conn:
            saved = conn.execute(text("DELETE FROM worker_helper_reports WHERE job_id = ANY(:ids) "
                                     "RETURNING job_id, report"), {"ids": helpers}).all()
        found: dict[int, dict[str, Any]] = {job_id: report for job_id, report in saved}
        # Killed after its report's commit, before procrastinate marked it done: its work was done.
        left_work = bool(lost - set(found))
        return [_report(report, own) for report in found.values() if not report.get("skipped")], left_work


def _counts(report: BatchReport) -> dict[str, Any]:
    """What a helper's report adds to the tick's, as JSON: its counts, amounts per currency, lists
    and words. Not its instant (the renewal report's `as_of`, a datetime that JSON cannot hold:
    every renewal helper failed on it, its invoices left out of the tick's report): the tick's own."""
    return {item.name: value for item in fields(report)
            if isinstance(value := getattr(report, item.name), bool | int | str | dict | list)}


def _report(saved: dict[str, Any], like: BatchReport) -> BatchReport:
    """A helper's report, of its batch's type (`like`, the tick's own, whose instant is the
    helper's too: the same batch at the same tick)."""
    if "failed" in saved:
        return BatchFailed(saved["failed"])
    if isinstance(like, BatchFailed):
        return BatchFailed(like.reason)
    return type(like)(**{**{item.name: getattr(like, item.name) for item in fields(like)}, **saved})


def _on_loop(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, Any],
             ignore: type[Exception] | None = None) -> Any:
    """Run procrastinate's async call on the worker's loop, from a job's thread."""
    try:
        return asyncio.run_coroutine_threadsafe(work, loop).result()
    except Exception as error:
        if ignore is not None and isinstance(error, ignore):
            return None
        raise


@dataclass(frozen=True)
class TaskJobs:
    task: str
    queued: int
    doing: int
    failed: int


@dataclass(frozen=True)
class QueueStatus:
    """What `renewly worker status` shows of the queue: jobs per task, and live workers."""

    jobs: list[TaskJobs]
    live_workers: int

    def as_json(self) -> dict[str, Any]:
        return {"live_workers": self.live_workers,
                "jobs": [{"task": item.task, "queued": item.queued, "running": item.doing, "failed": item.failed}
                         for item in self.jobs]}

    def describe(self) -> list[str]:
        """Lines of at most 80 columns (task names are short)."""
        head = f"queue: {self.live_workers} live worker(s)"
        if not self.jobs:
            return [f"{head}; no job queued, running or failed"]
        return [head] + [f"  {item.task}: {item.queued} queued, {item.doing} running, {item.failed} failed"
                         for item in self.jobs]


def queue_status(app: Ports) -> QueueStatus:
    with app.engine.connect() as conn:
        jobs = [TaskJobs(*row) for row in conn.execute(text(
            "SELECT task_name, count(*) FILTER (WHERE status = 'todo'), count(*) FILTER (WHERE status = 'doing'), "
            "count(*) FILTER (WHERE status = 'failed') FROM procrastinate_jobs "
            "WHERE status IN ('todo', 'doing', 'failed') GROUP BY task_name ORDER BY task_name"))]
        live = conn.execute(text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
                                 "now() - make_interval(secs => :seconds)"),
                            {"seconds": app.settings.worker.stalled_seconds}).scalar_one()
    return QueueStatus(jobs, live)


def run_worker(app: Ports) -> int | None:
    """Run a worker until SIGTERM or SIGINT; then the job in hand finishes its slice, and it
    returns the signal's number. Its logs: one JSON line per batch run and per tick, with the
    job's id."""
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer("json")],
                        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))
    app = replace(app, settings=app.settings.model_copy(update={"log_batch_runs": True, "log_format": "json"}))
    name = f"renewly@{socket.gethostname()}:{os.getpid()}"
    own_queue = own_queue_name(name)
    return asyncio.run(_work(app, job_queue(app, own_queue), name, own_queue))


async def _work(app: Ports, queue: procrastinate.App, name: str, own_queue: str) -> int | None:
    settings = app.settings.worker
    queues = [*QUEUES, own_queue]
    async with queue.open_async():
        worker = Worker(queue, queues=queues, name=name,
                        concurrency=JOBS_AT_ONCE, install_signal_handlers=False, delete_jobs="successful",
                        update_heartbeat_interval=settings.heartbeat_seconds,
                        stalled_worker_timeout=settings.stalled_seconds)
        loop = asyncio.get_running_loop()
        stopped_by: list[int] = []

        def stop(number: int) -> None:
            if stopped_by:
                log.warning("stopped at once by a second signal: the transactions in hand are rolled back")
                sys.stderr.flush()
                os._exit(130)
            stopped_by.append(number)
            log.info("stopping after the slice in hand (a second signal stops at once)")
            app.stop.ask()  # the batch in hand stops after its slice
            worker.stop()  # no other job is taken; the running ones are waited for

        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop, signal_number)
        log.info("worker started", worker=worker.worker_name, queues=queues,
                 check_seconds=settings.check_seconds, heartbeat_seconds=settings.heartbeat_seconds,
                 stalled_seconds=settings.stalled_seconds)
        joining = asyncio.create_task(_say_own_queue(app, worker, own_queue))
        try:
            await worker.run()
        finally:
            joining.cancel()
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signal_number)
        log.info("worker stopped", worker=worker.worker_name)
    return stopped_by[0] if stopped_by else None


async def _say_own_queue(app: Ports, worker: Worker, own_queue: str) -> None:
    """Once procrastinate has registered the worker (its id), say which queue is its own, for the
    ticks to defer helpers there; its row goes with the worker's (migration 0019). Until then, or
    if the database refuses, the worker gets no helper, only the shared queues' jobs."""
    while True:
        if worker.worker_id is None:
            await asyncio.sleep(0.05)
            continue
        # From now on this process's charges name the worker: if it dies, the tick run again
        # after it settles them at once, not when their lease ends (renewly.ports.LeaseHolder).
        app.leases.worker_id = worker.worker_id
        try:
            await asyncio.to_thread(_record_own_queue, app, worker.worker_id, own_queue)
            return
        except IntegrityError as error:  # its procrastinate row is gone already: pruned, taken for dead
            log.warning("own queue not recorded: the worker gets no helper", reason=str(error).splitlines()[0])
            return
        except SQLAlchemyError as error:
            log.warning("own queue not recorded yet; the worker tries again later",
                        reason=str(error).splitlines()[0], retry_in_seconds=app.settings.worker.check_seconds)
            await asyncio.sleep(app.settings.worker.check_seconds)


def _record_own_queue(app: Ports, worker_id: int, own_queue: str) -> None:
    with app.engine.begin() as conn:
        conn.execute(text("INSERT INTO worker_queues (worker_id, queue_name) VALUES (:id, :queue)"),
                     {"id": worker_id, "queue": own_queue})
