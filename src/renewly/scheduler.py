"""The batches, their intervals, and the ticks that run them: `renewly run`, the test clock.

A tick runs everything due at its instant, so that one run leaves nothing due undone and the
dates customers see do not depend on how often ticks come: the billing chain (payments, dunning,
renewals) runs again while one of its batches made work for another at the same instant (a
renewal's invoice to charge, a declined charge's case to open, a step's charge to make and tell),
then the card-check voids and the retention batch. Each batch has its own interval, aligned like
cron (every hour on the hour): on a test clock, `advance` walks through the ticks of every batch
that has work, in time order, and runs such a tick at each; a batch says when it next has work,
so idle ticks cost nothing. With `run_batches=False` time passes as if the service were down.

Asked to stop (`app.stop`, the first Ctrl-C), a tick runs no further batch once the one in hand
has finished its slice, and an advance runs no further tick: the test clock stays at the last
tick it began, so that it shows how far the batches really went.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from renewly.adapters.clock import LATEST_TEST_CLOCK
from renewly.adapters.db.bulk import insert_ignoring_conflicts
from renewly.adapters.db.tables import batch_runs
from renewly.adapters.logs import get_logger
from renewly.batches.parking import is_infrastructure, reason
from renewly.batches.reports import BatchFailed, BatchReport
from renewly.billing import renewals
from renewly.dunning import sweep as dunning
from renewly.mail import delivery as mail
from renewly.payments import collect, verifications
from renewly.ports import Ports
from renewly.retention import deletion as retention
from renewly.shared.errors import BillingError, InvalidInput
from renewly.webhooks import delivery as webhooks

log = get_logger(__name__)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The chain settles in three or four rounds (a recovery that lets renewals catch up is the
# longest); the bound only keeps a bug from looping for ever.
MAX_ROUNDS = 10


@dataclass(frozen=True)
class Batch:
    name: str
    interval: Callable[[Ports], timedelta]
    run: Callable[[Ports, datetime], BatchReport]
    # The moment its next work is due, if any; some ask the app (the policy, the settings).
    next_work_at: Callable[[Connection, Ports], datetime | None]
    # The billing chain: its batches run again while one of them made work for another.
    chained: bool = True


@dataclass(frozen=True)
class Step:
    """Where a run is, told as each batch starts (the `on_progress` callbacks): the tick in hand
    and its batch; for an advance, also the instants it goes from and to. What shows it (a
    progress bar at the command line) is the caller's business: the batches only tell."""

    at: datetime
    batch: str
    start: datetime | None = None
    target: datetime | None = None


Progress = Callable[[Step], None]


@dataclass(frozen=True)
class BatchRun:
    batch: str
    at: datetime
    report: BatchReport
    # Ran to its end: not failed, not stopped short. Such a batch is recorded as run at `at`
    # when its tick ends (`record_runs`) ...
    finished: bool = True
    # ... unless part of it was in the hands of a helper whose worker died, or failed, before its
    # report (renewly/worker/queue.py): what the helper held (its charges at the gateway) is still
    # due at `at`, and the tick with it, for the next look to run again.
    left_work: bool = False


# How a tick runs one of its batches at its instant: `run_batch` in this process by default; a
# queue worker (renewly/worker/queue.py) also lets other workers take slices of it beside it,
# and reports their work with its own, before the tick goes on to its next batch.
BatchRunner = Callable[["Batch", datetime], BatchRun]


# In this order, in each round of a tick. The payment batch first: it charges what was asked for
# since the last tick (a card updated during downtime pays before anything is cancelled). Then
# dunning, which cancels what is due for cancellation before the renewal batch would invoice it
# again. The next round charges what renewals issued and dunning asked for, and tells the outcome.
BATCHES: tuple[Batch, ...] = (
    Batch("collect", lambda app: timedelta(minutes=app.settings.payments.collect_interval_minutes),
          collect.collect_due, lambda conn, _app: collect.next_collect_at(conn)),
    Batch("dunning", lambda app: timedelta(minutes=app.settings.batches.dunning_interval_minutes),
          dunning.run_dunning, dunning.next_dunning_at),
    Batch("renew", lambda app: timedelta(minutes=app.settings.batches.renewal_interval_minutes),
          renewals.renew_due, lambda conn, _app: renewals.next_renewal_at(conn)),
    Batch("void-verifications", lambda app: timedelta(minutes=app.settings.payments.void_interval_minutes),
          verifications.void_due_verifications, lambda conn, _app: verifications.next_void_at(conn), chained=False),
    # Last: deletes what is due once everything else has run (R10).
    Batch("retention", lambda app: timedelta(minutes=app.settings.batches.retention_interval_minutes),
          retention.purge_due, retention.next_retention_at, chained=False),
)

# E-mails leave the outbox (docs/mail.md): a batch only where an SMTP server is configured
# (`mail.host`); without one, e-mails stay in the outbox and no tick waits for them. Before
# retention, which deletes a deleted account's outbox rows: what the tick wrote leaves first.
MAIL = Batch("mail", lambda app: timedelta(minutes=app.settings.mail.interval_minutes), mail.deliver_due,
             mail.next_mail_at, chained=False)


# Events leave the outbox as webhooks to the endpoints registered for them (docs/webhooks.md):
# a batch that has work only while an endpoint is enabled. Before retention too.
WEBHOOKS = Batch("webhooks", lambda app: timedelta(minutes=app.settings.webhooks.interval_minutes),
                 webhooks.deliver_due, webhooks.next_webhook_at, chained=False)


def batches(app: Ports) -> tuple[Batch, ...]:
    """The batches this application runs, in the order a tick runs them."""
    last = len(BATCHES) - 1  # retention
    leaving = (MAIL, WEBHOOKS) if app.settings.mail.configured else (WEBHOOKS,)
    return (*BATCHES[:last], *leaving, *BATCHES[last:])


def run_tick(app: Ports, at: datetime, on_run: Callable[[BatchRun], None] | None = None,
             on_progress: Progress | None = None, runner: BatchRunner | None = None) -> list[BatchRun]:
    """Run everything due at `at`: the billing chain until it rests, then the other batches.
    `on_progress` is told each batch as it starts; `runner` runs each (`run_batch` by default)."""
    runs: list[BatchRun] = []
    run_one = runner or (lambda batch, instant: run_batch(app, batch, instant))

    def run(batch: Batch) -> bool:
        """Whether the batch did anything; False, without running it, once a stop is asked."""
        if app.stop.asked:
            return False
        if on_progress:
            on_progress(Step(at, batch.name))
        runs.append(run_one(batch, at))
        if on_run:
            on_run(runs[-1])
        return runs[-1].report.did_anything

    for _ in range(MAX_ROUNDS):
        worked = [run(batch) for batch in batches(app) if batch.chained]
        if not any(worked):
            break
    else:
        log.warning("the billing chain still had work after its last round; the next tick goes on", at=at)
    for batch in batches(app):
        if not batch.chained:
            run(batch)
    record_runs(app, at, runs)
    return runs


def record_runs(app: Ports, at: datetime, runs: list[BatchRun]) -> None:
    """Record each batch that ran to its end in a tick as run at its instant, once the tick has
    ended, not as each batch ends: a tick's later round charges and tells what its first made due
    at the same instant, so a process that dies in it (kill -9, a lost machine) must leave the
    tick due still, for the restart, a worker's stalled tick retried, to run it again at that
    instant. Recorded after the first round, it was taken for done: the charges the dead process
    had at the gateway were settled at the next tick and the notices they wait for were dated
    then (three days later in bench/worker_chaos.py, whose day-0 and day-2 notices became one)."""
    finished = sorted({run.batch for run in runs if run.finished} - {run.batch for run in runs if run.left_work})
    if not finished:
        return
    with app.engine.begin() as conn:
        for name in finished:  # in the same order in every process: two ticks at once wait, never deadlock
            # One statement: two runs at once that both found no row would both insert it.
            conn.execute(insert_ignoring_conflicts(conn)(batch_runs).values(batch=name, last_run_at=at)
                         .on_conflict_do_update(index_elements=["batch"], set_={"last_run_at": at}))


def run_all(app: Ports, as_of: datetime, on_progress: Progress | None = None) -> list[BatchRun]:
    """`renewly run`: one tick as of `as_of`; one report per batch, the rounds added up (only
    the batches that ran, when a stop was asked)."""
    runs = run_tick(app, as_of, on_progress=on_progress)
    return [BatchRun(batch.name, as_of, merged([r.report for r in runs if r.batch == batch.name]))
            for batch in batches(app) if any(r.batch == batch.name for r in runs)]


def still_due(app: Ports, as_of: datetime) -> list[str]:
    """The batches with work due at `as_of` (what a stopped run left): one query per batch."""
    with app.engine.connect() as conn:
        return [batch.name for batch in batches(app)
                if (at := batch.next_work_at(conn, app)) is not None
                and at <= as_of]


def merged(reports: list[BatchReport]) -> BatchReport:
    """One report of a batch's rounds: counts added, amounts added per currency, lists joined;
    a failure stands for the whole."""
    failed = next((report for report in reports if isinstance(report, BatchFailed)), None)
    if failed is not None:
        return failed
    values = {}
    for name in (f.name for f in fields(reports[0])):
        parts = [getattr(report, name) for report in reports]
        if isinstance(parts[0], bool) or not isinstance(parts[0], (int, dict, list)):
            values[name] = parts[0]
        elif isinstance(parts[0], dict):
            values[name] = {key: sum(part.get(key, 0) for part in parts) for key in sorted(set().union(*parts))}
        elif isinstance(parts[0], list):
            values[name] = [item for part in parts for item in part]
        else:
            values[name] = sum(parts)
    return type(reports[0])(**values)


def run_batch(app: Ports, batch: Batch, at: datetime) -> BatchRun:
    """Run one batch as of `at`, a failure of its own reported rather than raised; whether it ran
    to its end is said (`finished`), for its tick to record (`record_runs`)."""
    started = time.perf_counter()  # a duration, not a date: not the clock's to give
    try:
        report = batch.run(app, at)
    except Exception as error:
        if is_infrastructure(error):
            raise  # the database itself: nothing else can run either
        # A failing batch never prevents the other batches of the tick; rows it could pin down
        # were parked by the batch itself, this is what it could not. A failure Renewly describes
        # (the gateway's ledger unreachable, ...) is said in its words, on one line; an unforeseen
        # one keeps its traceback, which whoever fixes it needs.
        if isinstance(error, BillingError):
            log.error("batch failed", batch=batch.name, at=at, reason=reason(error))
        else:
            log.exception("batch failed", batch=batch.name, at=at)
        report = BatchFailed(reason(error))
        _log_run(app, batch, at, report, started)
        return BatchRun(batch.name, at, report, finished=False)
    _log_run(app, batch, at, report, started)
    # Asked to stop, it may have stopped short: not a run to its end.
    return BatchRun(batch.name, at, report, finished=not app.stop.asked)


def _log_run(app: Ports, batch: Batch, at: datetime, report: BatchReport, started: float) -> None:
    if app.settings.log_batch_runs:
        log.info("batch run", **batch_run_fields(batch.name, at, report, time.perf_counter() - started))


def batch_run_fields(batch: str, at: datetime, report: BatchReport, seconds: float) -> dict[str, object]:
    """What the log line of a batch run says (setting `log_batch_runs`): the batch, its instant,
    its seconds, and its report's counts: numbers as they are, amounts per currency in minor
    units, a list by its length; a failed batch by its reason."""
    values: dict[str, object] = {"batch": batch, "at": at.isoformat(), "seconds": round(seconds, 3)}
    for item in fields(report):  # every report is a dataclass
        value = getattr(report, item.name)
        if isinstance(value, bool | str | int | dict):
            values[item.name] = value
        elif isinstance(value, list):
            values[item.name] = len(value)
    return values


def tick_at_or_after(instant: datetime, interval: timedelta) -> datetime:
    ticks, remainder = divmod(instant - EPOCH, interval)
    return EPOCH + interval * (ticks + (1 if remainder else 0))


@dataclass(frozen=True)
class ClockMove:
    """What an advance did: the ticks it ran, and where it left the clock; stopped when asked
    to, short of the target it was asked to reach."""

    runs: list[BatchRun]
    now: datetime
    target: datetime
    stopped: bool = False


# One advance runs about a simulated year a second: a longer one is a typo (`--days 1000000` would
# run for an hour); ten years at once is more than any story a test clock tells.
MOST_DAYS_PER_ADVANCE = 3660


def advance(app: Ports, by: timedelta, *, run_batches: bool = True,
            on_run: Callable[[BatchRun], None] | None = None, on_progress: Progress | None = None) -> ClockMove:
    """Move the test clock `by` from wherever it is when this move gets its turn: advances at
    once take turns (12 of one day each move it 12 days), each running the ticks on its way.
    `on_progress` is told each batch as it starts, with the move's start and target."""
    clock = app.test_clock
    if clock is None:
        raise InvalidInput("the clock is the system clock; set RENEWLY_CLOCK=test to move time", code="not_test_clock")
    if by <= timedelta(0):
        raise InvalidInput("the test clock only moves forward", code="clock_backwards")
    if by > timedelta(days=MOST_DAYS_PER_ADVANCE):
        raise InvalidInput(f"an advance moves at most {MOST_DAYS_PER_ADVANCE} days (ten years); advance again "
                           "for more", code="advance_too_long")
    with clock.turn():
        start = clock.now()
        if by > LATEST_TEST_CLOCK - start:
            raise InvalidInput(f"the test clock is at {start.isoformat()} and stops at "
                               f"{LATEST_TEST_CLOCK.isoformat()}", code="clock_too_far")
        target = start + by
        runs: list[BatchRun] = []
        if run_batches:
            reached = start
            # Each batch told with the move's start and target: how far along the move is.
            tell = (lambda step: on_progress(Step(step.at, step.batch, start, target))) if on_progress else None
            while (due := _next_due(app, start, reached, target)) is not None:
                if app.stop.asked:
                    # Ticks left: the clock stays at the last tick begun, where the batches'
                    # work is dated, and goes no further.
                    return ClockMove(runs, reached, target, stopped=True)
                reached = due
                clock.set(due)
                runs.extend(run_tick(app, due, on_run, tell))
                if app.stop.asked and still_due(app, due):
                    # That tick was stopped short: what it left falls due again only at the next
                    # tick (maybe past the target), yet the clock must not pass it.
                    return ClockMove(runs, reached, target, stopped=True)
        clock.set(target)
    return ClockMove(runs, target, target)


def _next_due(app: Ports, start: datetime, reached: datetime, target: datetime) -> datetime | None:
    """The earliest tick in [reached, target] after `start` at which a batch has work. Time never
    goes back: `reached` is the last tick run."""
    with app.engine.connect() as conn:
        ticks = [tick for plan in _plans(conn, app, start)
                 if plan.work_at is not None
                 and (tick := tick_at_or_after(max(plan.work_at, reached, plan.not_before), plan.interval)) <= target]
    return min(ticks, default=None)


@dataclass(frozen=True)
class BatchSchedule:
    """Where a batch stands at an instant: its last run, its next tick, how late that tick is."""

    batch: str
    interval: timedelta
    last_run_at: datetime | None
    work_at: datetime | None  # its earliest work due, if any
    next_tick_at: datetime | None  # the tick that will do that work (None: no work waits)
    late_by: timedelta  # how long past its tick that work has waited (zero when not late)


def schedule(app: Ports, now: datetime) -> list[BatchSchedule]:
    """Every batch's standing at `now` (`renewly worker status`), in the order batches run."""
    with app.engine.connect() as conn:
        plans = _plans(conn, app, None)
    result = []
    for plan in plans:
        tick = None if plan.work_at is None else tick_at_or_after(max(plan.work_at, plan.not_before),
                                                                   plan.interval)
        late = max(now - tick, timedelta(0)) if tick is not None else timedelta(0)
        result.append(BatchSchedule(plan.batch.name, plan.interval, plan.last_run_at, plan.work_at, tick, late))
    return result


def tick_due(app: Ports, now: datetime) -> datetime | None:
    """The instant of the tick a worker runs at `now`, if some batch's tick for its waiting work
    has come: the latest tick boundary at or before `now` of such a batch. Like `renewly run`, one
    tick does everything due by then, so a worker back after downtime runs one tick, dated now,
    not the ticks it missed; and a worker that looks every minute dates work like one that looks
    every second: at the boundary of the batch's interval (every hour on the hour)."""
    due = [tick_at_or_before(now, item.interval) for item in schedule(app, now)
           if item.next_tick_at is not None and item.next_tick_at <= now]
    return max(due, default=None)


def tick_at_or_before(instant: datetime, interval: timedelta) -> datetime:
    return EPOCH + interval * ((instant - EPOCH) // interval)


@dataclass(frozen=True)
class _Plan:
    batch: Batch
    interval: timedelta
    last_run_at: datetime | None
    not_before: datetime  # its next tick comes after its last run (and after an advance's start)
    work_at: datetime | None


def _plans(conn: Connection, app: Ports, start: datetime | None) -> list[_Plan]:
    last_runs = dict(conn.execute(select(batch_runs.c.batch, batch_runs.c.last_run_at)).all())
    plans = []
    for batch in batches(app):
        last = last_runs.get(batch.name)
        after = [at for at in (start, last) if at is not None]
        not_before = max(after) + timedelta(microseconds=1) if after else EPOCH
        plans.append(_Plan(batch, batch.interval(app), last, not_before, batch.next_work_at(conn, app)))
    return plans


def batch_named(name: str) -> Batch:
    """The batch of that name (a queued job names its batch)."""
    found = next((batch for batch in (*BATCHES, MAIL, WEBHOOKS) if batch.name == name), None)
    if found is None:
        raise ValueError(f"no batch is named {name!r}")
    return found


def next_tick_of(conn: Connection, app: Ports, batch_name: str, due_at: datetime) -> datetime:
    """The tick of `batch_name` that runs work due at `due_at`: its first interval boundary at or
    after it, and after the batch's last run (a tick already run does not run again)."""
    batch = batch_named(batch_name)
    last = conn.execute(select(batch_runs.c.last_run_at).where(batch_runs.c.batch == batch_name)).scalar()
    after = due_at if last is None or last < due_at else last + timedelta(microseconds=1)
    return tick_at_or_after(after, batch.interval(app))
