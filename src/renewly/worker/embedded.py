"""`renewly worker` on SQLite (the embedded default): the scheduler's ticks, in this process, on a timer.

Every `worker.check_seconds` the worker asks the scheduler whether a batch's tick has come
(`scheduler.tick_due`) and, if so, runs that tick (`scheduler.run_tick`), as `renewly run` would
at that instant: the batches' intervals say when work runs (every hour on the hour), the check
only bounds how late after its tick it starts.

One worker per database file: an SQLite file is one machine's, and a second worker would only
queue behind the first one's writes. The command holds the worker lock beside the database
(`adapters/db/locks.py: holding_the_worker_lock`, `renewly.db` -> `renewly-worker.lock`), which
the system releases however the process ends (kill -9 too).

What no batch is to blame for (the database unreachable, a disk full: `batches.parking.
is_infrastructure`) does not end the worker: it logs one line and looks again later, waiting
longer each time (from `check_seconds`, doubling, up to five minutes), so that a database back
after a restart is used again without anyone restarting the workers. A batch that fails is
reported by the tick (a log line) and the other batches run; since its run is not recorded, it
is due again, and is tried again after the same growing wait. Anything else is a bug: it ends
the process with its traceback (systemd restarts it, docs/operations.md).
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from renewly.adapters.logs import get_logger
from renewly.batches.parking import is_infrastructure, reason
from renewly.batches.reports import BatchFailed
from renewly.ports import Ports
from renewly.scheduler import BatchRun, run_tick, tick_due

log = get_logger(__name__)

# The longest wait between two looks after a failure: a database back after a restart is used
# again within five minutes, and a worker that cannot reach it logs at most one line in five.
LONGEST_WAIT_SECONDS = 300


class Nap(Protocol):
    """How the worker waits between looks: returns early once a stop is asked (a signal)."""

    def __call__(self, seconds: float) -> None: ...


class Alarm:
    """A wait a signal handler cuts short: the handler calls `ring()` (one write to a pipe, safe
    in a signal handler, where setting a threading.Event may deadlock on its lock), and `nap`
    waits on the pipe's other end."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # a handler never blocks, even on a full pipe

    def ring(self) -> None:
        try:
            os.write(self._write, b"!")
        except BlockingIOError:  # rung already, and not yet heard
            pass

    def nap(self, seconds: float) -> None:
        ready, _, _ = select.select([self._read], [], [], seconds)
        if ready:
            os.read(self._read, 64)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@dataclass
class WorkerReport:
    """What a worker did before it stopped: the ticks it ran and what the batches of the last one
    left (a failed batch, parked rows)."""

    ticks: list[datetime] = field(default_factory=list)
    runs: int = 0  # batch runs, the rounds of the billing chain counted one by one
    failed_batches: int = 0
    parked: int = 0

    def describe(self) -> str:
        if not self.ticks:
            return "no tick ran"
        left = [f"{count} {what}" for count, what in ((self.parked, "row(s) parked"),
                                                      (self.failed_batches, "batch run(s) failed")) if count]
        return (f"{len(self.ticks)} tick(s) ran, the last as of {self.ticks[-1].isoformat()}"
                + (f" ({', '.join(left)}: renewly problems)" if left else ""))


def wait_after_failures(check_seconds: int, failures: int) -> int:
    """How long to wait before the next look after `failures` looks in a row that failed: the
    check's period, doubled at each failure, at most five minutes (never less than the check)."""
    if failures <= 0:
        return check_seconds
    return max(check_seconds, min(LONGEST_WAIT_SECONDS, check_seconds * 2 ** failures))


def run(app: Ports, nap: Nap, *, on_run: Callable[[BatchRun], None] | None = None) -> WorkerReport:
    """Run the ticks as they come due until `app.stop` is asked; `nap` waits between looks and
    must return early once a stop is asked (`Alarm.nap`, rung by the command's signal handlers).
    The caller holds the worker lock (`adapters.db.locks.holding_the_worker_lock`)."""
    report = WorkerReport()
    check = app.settings.worker.check_seconds
    failures = 0  # looks in a row that failed
    while not app.stop.asked:
        try:
            at = tick_due(app, app.clock.now())
            if at is not None:
                runs = run_tick(app, at, on_run=on_run)
                report.ticks.append(at)
                report.runs += len(runs)
                failed = sum(isinstance(run.report, BatchFailed) for run in runs)
                report.failed_batches += failed
                report.parked += sum(run.report.parked for run in runs)
                # A failed batch is due again at once (its run was not recorded): try it again
                # after a growing wait rather than at every look.
                failures = failures + 1 if failed else 0
            else:
                failures = 0
        except Exception as error:
            if not is_infrastructure(error):
                raise  # a bug: its traceback, and the process ends (systemd restarts it)
            failures += 1
            log.error("the database cannot be used; the worker looks again later", reason=reason(error),
                      retry_in_seconds=wait_after_failures(check, failures))
        if not app.stop.asked:
            nap(wait_after_failures(check, failures))
    return report
