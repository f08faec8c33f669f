"""`renewly worker`: the batches run by themselves on the clock, until SIGTERM or Ctrl-C; and
`renewly worker status`, where each batch stands and which workers run (docs/operations.md)."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from renewly.cli.common import JsonFlag, echo_wrapped, open_app, print_json, print_table, utc_minute

if TYPE_CHECKING:
    from renewly.bootstrap import App
    from renewly.worker.status import WorkerStatus

# Its help is the callback's: `renewly worker` runs a worker, `renewly worker status` reads.
app = typer.Typer(invoke_without_command=True)

@app.callback(invoke_without_command=True)
def worker(context: typer.Context) -> None:
    """Run the batches by themselves on the clock, until SIGTERM (exit 0) or Ctrl-C (exit 130).

    On SQLite, one worker per database file runs each tick in this process when it comes due (a
    second one is refused); on PostgreSQL, any number of workers share the queue's jobs. One
    JSON log line per batch run on stderr; the slice in hand finishes before the worker stops."""
    if context.invoked_subcommand is not None:
        return
    from renewly.adapters.logs import configure_command_line_logs
    application = open_app(issues_invoices=True)  # renewals
    # A worker's stderr is a log collector's (journald): one JSON line per batch run.
    application.settings = application.settings.model_copy(update={"log_batch_runs": True, "log_format": "json"})
    configure_command_line_logs("json")
    from renewly.adapters.db.locks import several_writers
    if several_writers(application.engine):  # PostgreSQL: the queue, shared by every worker
        run_on_postgresql(application)
        return
    run_embedded(application)


def run_on_postgresql(application: App) -> None:
    """procrastinate's worker (renewly.worker.queue), which handles the signals itself: the first
    lets the slice in hand finish, then one line on what is left; a second stops at once (130)."""
    from renewly.worker.queue import run_worker
    number = run_worker(application)
    _stopped(application, number, "")


def _stopped(application: App, number: int | None, done: str) -> None:
    """The worker's last line, on stdout, and its exit: 130 for Ctrl-C (SIGINT), else 0."""
    from renewly.scheduler import still_due
    by = signal.Signals(number).name if number else "a stop"
    left = still_due(application, application.clock.now())
    echo_wrapped(f"worker stopped by {by} after the slice in hand{done}; "
                 + (f"still due: {', '.join(left)} (the next worker or `renewly run` does it)" if left
                    else "nothing due was left"))
    raise typer.Exit(130 if number == signal.SIGINT else 0)


def run_embedded(application: App) -> None:
    """SQLite: the ticks in this process; the first SIGTERM or Ctrl-C lets the slice in hand
    finish, then one line on what was done; a second one stops at once (exit 130)."""
    from renewly.adapters.db.locks import holding_the_worker_lock
    from renewly.adapters.logs import get_logger
    from renewly.cli.common import stopping_on_signals
    from renewly.worker.embedded import Alarm
    from renewly.worker.embedded import run as run_worker

    log = get_logger("renewly.worker")
    alarm = Alarm()
    # The handlers first: a signal that comes once the lock shows this worker's pid (what a
    # supervisor or a test waits for) is heard, never Python's default KeyboardInterrupt.
    with (stopping_on_signals(application, (signal.SIGINT, signal.SIGTERM), say=_log_stopping,
                              then=alarm.ring) as stopped,
          holding_the_worker_lock(application.engine) as lock):
        log.info("worker started", pid=os.getpid(), lock_file=str(lock),
                 check_seconds=application.settings.worker.check_seconds)
        report = run_worker(application, alarm.nap)
    alarm.close()
    _stopped(application, stopped.number, f": {report.describe()}")


def _log_stopping(_said: str) -> None:
    """In the signal handler: the line is made whole and written at once (no logger, no lock)."""
    line = json.dumps({"event": "stopping after the slice in hand (a second signal stops at once)",
                       "level": "info", "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")})
    os.write(2, f"{line}\n".encode())


@app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """Each batch's last run, next tick and how late it is; the workers that run."""
    from renewly.worker.status import worker_status
    found = worker_status(open_app())
    if as_json:
        print_json(status_json(found))
        return
    typer.echo(f"{found.clock} clock: {utc_minute(found.now)} UTC")
    print_table("", ["batch", "every", "last run (UTC)", "next tick (UTC)", "late"],
                [[item.batch, duration(item.interval), utc_minute(item.last_run_at) if item.last_run_at else "never",
                  utc_minute(item.next_tick_at) if item.next_tick_at else "no work",
                  duration(item.late_by) if item.next_tick_at else ""]
                 for item in found.batches],
                whole=("batch", "last run (UTC)", "next tick (UTC)"))
    for line in worker_lines(found) + webhook_lines(found):
        echo_wrapped(line)


def worker_lines(found: WorkerStatus) -> list[str]:
    if found.embedded is not None:
        if found.embedded.live:
            pid = f" (pid {found.embedded.pid})" if found.embedded.pid else ""
            return [f"worker: running{pid}; it holds {found.embedded.lock_file}"]
        return ["worker: none runs on this database (`renewly worker` starts one)"]
    if not found.shared_queue:
        return ["worker: none (the database is in memory)"]
    return found.queue.describe() if found.queue is not None else []


def webhook_lines(found: WorkerStatus) -> list[str]:
    return [f"webhooks: endpoint {endpoint['id']} ({endpoint['url']}) disabled {utc_minute(endpoint['disabled_at'])} "
            f"UTC: {endpoint['disabled_reason']}; its deliveries wait (renewly webhooks enable {endpoint['id']})"
            for endpoint in found.disabled_endpoints]


def status_json(found: WorkerStatus) -> dict[str, Any]:
    return {"now": found.now, "clock": found.clock, "engine": "postgresql" if found.shared_queue else "sqlite",
            "batches": [{"batch": item.batch, "interval_minutes": item.interval // timedelta(minutes=1),
                         "last_run_at": item.last_run_at, "work_at": item.work_at,
                         "next_tick_at": item.next_tick_at, "late_seconds": int(item.late_by.total_seconds())}
                        for item in found.batches],
            "worker": None if found.embedded is None else {"live": found.embedded.live, "pid": found.embedded.pid,
                                                           "lock_file": found.embedded.lock_file},
            "queue": None if found.queue is None else found.queue.as_json(),
            "webhook_endpoints_disabled": found.disabled_endpoints}


def duration(span: timedelta) -> str:
    """A span in its two largest units: 45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((index for index, (value, _) in enumerate(parts) if value), len(parts) - 1)
    return " ".join(f"{value} {unit}" for value, unit in parts[first:first + 2] if value) or "0 s"
