"""Batches started in separate processes at the same moment, for the concurrency tests.

"At once" is made certain rather than likely: an EXCLUSIVE lock on a table every batch must write
holds them all until each one waits for it, then all are let go together.
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


def run_at_once(app, arguments: list[str], *, gate: str, environment: dict[str, str], count: int = 2,
                cwd: Path | None = None, outcomes: bool = False, as_json: bool = True) -> list:
    """Run `renewly ARGUMENTS --json` in `count` processes let go together at the `gate` table;
    returns their JSON reports, each having exited 0 with nothing on stderr; or, with `outcomes`,
    each one's (exit code, stdout, stderr), whatever they were."""
    variables = {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                 "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), **environment}
    with app.engine.connect() as holder, app.engine.connect() as watcher:
        holder.execute(text(f"LOCK TABLE {gate} IN EXCLUSIVE MODE"))
        command = [str(RENEWLY), *arguments, *(["--json"] if as_json else [])]
        batches = [subprocess.Popen(command, env=variables, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for _ in range(count)]
        deadline = time.monotonic() + 60
        while watcher.execute(text("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted "
                                   "AND relation = CAST(:gate AS regclass)"), {"gate": gate}).scalar() < count:
            watcher.rollback()  # a fresh snapshot of pg_locks each time
            finished = [batch for batch in batches if batch.poll() is not None]
            assert not finished, finished[0].stderr.read()
            assert time.monotonic() < deadline, f"the {count} batches never all waited at {gate}"
            time.sleep(0.05)
        holder.rollback()  # all are waiting: let them go together
    finished = [batch.communicate(timeout=120) for batch in batches]
    if outcomes:
        return [(batch.returncode, out, err) for batch, (out, err) in zip(batches, finished)]
    failures = [err for batch, (_, err) in zip(batches, finished) if (batch.returncode, err) != (0, "")]
    assert not failures, "\n".join(failures)
    return [json.loads(out) for out, _ in finished]
