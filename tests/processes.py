"""Batches started in separate processes at the same moment, for the concurrency tests.

"At once" is made certain rather than likely: an EXCLUSIVE lock on a table every batch must write
(or the row locks and unique keys of a statement left uncommitted) holds them all until each one
waits, then all are let go together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

RENEWLY = Path(sys.executable).with_name("renewly")


def run_at_once(app, arguments: list[str] | list[list[str]], *, gate: str, environment: dict[str, str] | None = None,
                count: int = 2, cwd: Path | None = None, holding: str | None = None, outcomes: bool = False,
                as_json: bool = True, one_after_another: bool = False) -> list:
    """Run `renewly ARGUMENTS --json` in `count` processes let go together at the `gate` table
    (or one process per list of arguments, two batches side by side); returns their JSON reports,
    each having exited 0 with nothing on stderr; or, with `outcomes`, each one's (exit code,
    stdout, stderr), whatever they were.

    `holding`: a statement run instead of locking the gate, whose uncommitted rows hold the
    batches (an INSERT of the key they all insert holds them at that insert, past their reads).

    `one_after_another`: each batch is started once the ones before it wait, so that the first
    holds what it takes on its way to the gate before the next one looks for it (started
    together, whichever process starts faster gets there first, and a batch that needs nothing the
    other holds finishes without waiting)."""
    with app.engine.connect() as holder, app.engine.connect() as watcher:
        holder.execute(text(holding or f"LOCK TABLE {gate} IN EXCLUSIVE MODE"))
        if one_after_another:
            commands = arguments if isinstance(arguments[0], list) else [arguments] * count
            batches = []
            for command in commands:
                batches += _start(app, [command], 1, environment, cwd, as_json, first=len(batches))
                _wait_until_waiting(watcher, batches, gate)
        else:
            batches = _start(app, arguments, count, environment, cwd, as_json)
            _wait_until_waiting(watcher, batches, gate)
        holder.rollback()  # all are waiting: let them go together
    return _outcomes(batches) if outcomes else _reports(batches)


def _wait_until_waiting(watcher, batches: list[subprocess.Popen], gate: str) -> None:
    count = len(batches)
    deadline = time.monotonic() + 60
    # Each batch waiting for a lock, whoever holds it: a batch may queue behind another one
    # that waits at the gate (for an account the first one locked on its way). All waiting,
    # none can be past the gate (a cycle among them would be a deadlock, which PostgreSQL
    # breaks). A batch is known by its connections' application name (one worker is enough).
    while watcher.execute(text("SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND application_name LIKE 'renewly-batch-%' "
                               "AND cardinality(pg_blocking_pids(pid)) > 0")).scalar() < count:
        watcher.rollback()  # a fresh snapshot each time
        finished = [batch for batch in batches if batch.poll() is not None]
        assert not finished, finished[0].stderr.read()
        assert time.monotonic() < deadline, f"the {count} batches never all waited at {gate}"
        time.sleep(0.05)


def run_together(app, arguments: list[str], *, count: int, environment: dict[str, str] | None = None,
                 cwd: Path | None = None) -> list[dict]:
    """As `run_at_once`, without a gate (SQLite has no lock to watch): started together, the
    processes are at once if their startups take alike, which is likely, not certain."""
    return _reports(_start(app, arguments, count, environment, cwd, True))


def _start(app, arguments: list[str] | list[list[str]], count: int, environment: dict[str, str] | None,
           cwd: Path | None, as_json: bool, first: int = 0) -> list[subprocess.Popen]:
    variables = {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                 "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), **(environment or {})}
    commands = arguments if isinstance(arguments[0], list) else [arguments] * count
    return [subprocess.Popen([str(RENEWLY), *command, *(["--json"] if as_json else [])],
                             env={**variables, "PGAPPNAME": f"renewly-batch-{first + n}"}, cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n, command in enumerate(commands)]


def _outcomes(batches: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    finished = [batch.communicate(timeout=120) for batch in batches]
    return [(batch.returncode, out, err) for batch, (out, err) in zip(batches, finished)]


def _reports(batches: list[subprocess.Popen]) -> list[dict]:
    """Each batch's JSON report; each must exit 0 with nothing on stderr."""
    finished = [batch.communicate(timeout=120) for batch in batches]
    failures = [err for batch, (_, err) in zip(batches, finished) if (batch.returncode, err) != (0, "")]
    assert not failures, "\n".join(failures)
    return [json.loads(out) for out, _ in finished]
