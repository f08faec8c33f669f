"""The batches, their intervals, and the test clock's advance that runs them on the way.

Each batch runs on ticks aligned to its interval (every hour on the hour, like cron). On a
test clock, `advance` walks through those ticks in time order and runs each batch that has
work then; a batch may say when it next has work, so that idle ticks cost nothing. With
`run_batches=False` time passes as if the service were down, and nothing runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from renewly.adapters.db.tables import batch_runs
from renewly.bootstrap import App
from renewly.domain.errors import InvalidInput
from renewly.services import collect, dunning, renewals, retention, verifications

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Batch:
    name: str
    interval: Callable[[App], timedelta]
    run: Callable[[App, datetime], object]
    next_work_at: Callable[[Connection], datetime | None]
    # True when next_work_at also needs the app (the policy, the settings): (conn, app) -> moment.
    needs_app: bool = False


@dataclass(frozen=True)
class BatchRun:
    batch: str
    at: datetime
    report: object


# In this order on a tie. The payment batch first: it charges what was asked for since the last
# run (a card updated during downtime pays before anything is cancelled). Then dunning, which
# cancels what is due for cancellation before the renewal batch would invoice it again; the
# charges dunning and renewals ask for are made by the next payment batch.
BATCHES: tuple[Batch, ...] = (
    Batch("collect", lambda app: timedelta(minutes=app.settings.payments.collect_interval_minutes),
          collect.collect_due, collect.next_collect_at),
    Batch("dunning", lambda app: timedelta(minutes=app.settings.batches.dunning_interval_minutes),
          dunning.run_dunning, dunning.next_dunning_at),
    Batch("renew", lambda app: timedelta(minutes=app.settings.batches.renewal_interval_minutes),
          renewals.renew_due, renewals.next_renewal_at),
    Batch("void-verifications", lambda app: timedelta(minutes=app.settings.payments.void_interval_minutes),
          verifications.void_due_verifications, verifications.next_void_at),
    # Last: deletes what is due once everything else has run (R10).
    Batch("retention", lambda app: timedelta(minutes=app.settings.batches.retention_interval_minutes),
          retention.purge_due, retention.next_retention_at, needs_app=True),
)


def run_all(app: App, as_of: datetime) -> list[BatchRun]:
    """Run every batch once, in order, as of `as_of` (`renewly run`)."""
    return [_run(app, batch, as_of) for batch in BATCHES]


def _run(app: App, batch: Batch, at: datetime) -> BatchRun:
    report = batch.run(app, at)
    with app.engine.begin() as conn:
        updated = conn.execute(batch_runs.update().where(batch_runs.c.batch == batch.name)
                               .values(last_run_at=at)).rowcount
        if not updated:
            conn.execute(batch_runs.insert().values(batch=batch.name, last_run_at=at))
    return BatchRun(batch.name, at, report)


def tick_at_or_after(instant: datetime, interval: timedelta) -> datetime:
    ticks, remainder = divmod(instant - EPOCH, interval)
    return EPOCH + interval * (ticks + (1 if remainder else 0))


def advance(app: App, by: timedelta, *, run_batches: bool = True,
            on_run: Callable[[BatchRun], None] | None = None) -> list[BatchRun]:
    clock = app.test_clock
    if clock is None:
        raise InvalidInput("the clock is the system clock; set RENEWLY_CLOCK=test to move time", code="not_test_clock")
    if by <= timedelta(0):
        raise InvalidInput("the test clock only moves forward", code="clock_backwards")
    start = clock.now()
    target = start + by
    runs: list[BatchRun] = []
    if run_batches:
        reached = start
        while (due := _next_due(app, start, reached, target)) is not None:
            at, batch = due
            reached = at
            clock.set(at)
            runs.append(_run(app, batch, at))
            if on_run:
                on_run(runs[-1])
    clock.set(target)
    return runs


def _next_due(app: App, start: datetime, reached: datetime, target: datetime) -> tuple[datetime, Batch] | None:
    """The earliest (tick, batch) in [reached, target] after `start` at which a batch has work; on a
    tie, batches run in their order. Time never goes back: `reached` is the last tick run."""
    with app.engine.connect() as conn:
        last_runs = dict(conn.execute(select(batch_runs.c.batch, batch_runs.c.last_run_at)).all())
        candidates = []
        for order, batch in enumerate(BATCHES):
            interval = batch.interval(app)
            earliest = max(start, last_runs.get(batch.name, start))
            work_at = batch.next_work_at(conn, app) if batch.needs_app else batch.next_work_at(conn)
            if work_at is None:
                continue
            tick = tick_at_or_after(max(work_at, reached, earliest + timedelta(microseconds=1)), interval)
            if tick <= target:
                candidates.append((tick, order, batch))
    if not candidates:
        return None
    tick, _, batch = min(candidates, key=lambda c: (c[0], c[1]))
    return tick, batch
