"""Who else may be writing, and how a transaction keeps the rows it works on to itself.

The one place where the engines differ in this. On PostgreSQL several workers (threads of a
batch, other processes) write at once, so a use case locks the rows it reads to change them,
and a batch claims the rows nobody else holds. On SQLite a write transaction (BEGIN IMMEDIATE,
see engine.py) holds the whole database: nobody else writes meanwhile, so each of these is a
no-op there and there is never a second worker. Use cases ask these questions; they never ask
which engine they run on.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    column,
    exists,
    false,
    func,
    select,
    table,
)

from renewly.adapters.db.bulk import among, is_postgres
from renewly.adapters.db.engine import sqlite_file
from renewly.shared.errors import Conflict, InvalidInput

Query = TypeVar("Query", bound=Select)


def several_writers(bind: Connection | Engine) -> bool:
    """Whether other workers may write while this one does (PostgreSQL); False where the engine
    lets one writer in at a time (SQLite), so that no one else can hold, claim or change a row."""
    return is_postgres(bind)


def held_by_a_dead_worker(bind: Connection | Engine, worker_id: ColumnElement, stalled_seconds: float
                          ) -> ColumnElement[bool]:
    """Whether `worker_id` (a row's claimant) names a queue worker taken for dead: its heartbeat
    older than `stalled_seconds`, or its row gone (procrastinate deletes a stopped or pruned
    worker's). As the worker's own stalled jobs are retried then (renewly.worker.queue), so is
    what it held. False for a row no worker claimed, and on SQLite, where no queue worker runs."""
    if not several_writers(bind):
        return false()
    workers = table("procrastinate_workers", column("id"), column("last_heartbeat"))
    alive = exists().where(workers.c.id == worker_id,
                           workers.c.last_heartbeat > func.now() - timedelta(seconds=stalled_seconds))
    return and_(worker_id.is_not(None), ~alive)


def claim_unheld(query: Query, conn: Connection, *, of=None, key_share: bool = False) -> Query:
    """The rows `query` reads that no other transaction holds, locked to the end of this one
    (FOR UPDATE SKIP LOCKED): what another worker claims is its own, and it is not waited for.
    `of`: the tables whose rows are locked (all that the query reads if None). `key_share`: FOR
    NO KEY UPDATE, which lets others write rows that point at these ones meanwhile."""
    if not several_writers(conn):
        return query
    return query.with_for_update(of=of, skip_locked=True, key_share=key_share)


def hold_until_commit(query: Query, conn: Connection, *, of=None, key_share: bool = False) -> Query:
    """The rows `query` reads, locked to the end of the transaction (FOR UPDATE), waiting for
    whoever holds them now. `of` and `key_share` as for `claim_unheld`."""
    if not several_writers(conn):
        return query
    return query.with_for_update(of=of, key_share=key_share)


def hold_rows(conn: Connection, table: Table, ids: Iterable[int], *, key_share: bool = False) -> None:
    """Lock the rows of `table` with these ids to the end of the transaction, in id order (so
    that two transactions that lock several take them in the same order, and never wait for
    each other). Nothing to do where the writer holds the whole database already."""
    ids = sorted(ids)
    if ids and several_writers(conn):
        conn.execute(select(table.c.id).where(among(conn, table.c.id, ids))
                     .order_by(table.c.id).with_for_update(key_share=key_share))


# -- `renewly worker` ---------------------------------------------------------------------------
# On PostgreSQL (several_writers) any number of workers share the queue's jobs. On SQLite one
# worker per database file: the file is one machine's, and a second worker would only queue
# behind the first one's writes. It holds an exclusive lock (flock) on a file beside the
# database, made on first use and never deleted; the system releases it when the process ends,
# however it ends (kill -9 too), so a stale lock never keeps a new worker out. The file says the
# pid of the worker holding it, for `renewly worker status` and the refusal of a second one.

# How long a starting worker keeps trying for the lock before it is refused: `renewly worker
# status` takes it for an instant to see whether a worker holds it.
LOCK_PATIENCE_SECONDS = 1.0


def worker_lock_beside(database_path: str) -> str:
    """The worker's lock file beside an SQLite database file: renewly.db -> renewly-worker.lock,
    renewly.sqlite -> renewly.sqlite-worker.lock."""
    return database_path.removesuffix(".db") + "-worker.lock"


def worker_lock_path(engine: Engine) -> Path:
    """The worker's lock file of an SQLite database. A database in memory is refused: it is
    this process's alone, nothing a worker could share."""
    database = sqlite_file(engine.url)
    if database is None:
        raise InvalidInput("the database is in memory: a worker has nothing to share with other commands; "
                           "set database_url to a file (docs/operations.md)", code="worker_in_memory")
    return Path(worker_lock_beside(database)).resolve()  # said whole in status and refusals


@contextmanager
def holding_the_worker_lock(engine: Engine) -> Iterator[Path]:
    """The one worker of this database: refused (exit 2) while another process holds the lock."""
    import fcntl  # POSIX file locks

    path = worker_lock_path(engine)
    with open(path, "a+") as lock:  # "a+": made on first use, never truncated before it is ours
        deadline = time.monotonic() + LOCK_PATIENCE_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    pid = _pid_in(lock)
                    raise Conflict(f"a worker{f' (pid {pid})' if pid else ''} already runs on "
                                   f"{sqlite_file(engine.url)}: one worker per SQLite database (it holds "
                                   f"{path})", code="worker_running") from None
                time.sleep(0.05)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield path


@dataclass(frozen=True)
class EmbeddedWorker:
    """Whether a worker runs on an SQLite database: a process holds its lock file; its pid."""

    live: bool
    pid: int | None
    lock_file: str


def embedded_worker(engine: Engine) -> EmbeddedWorker | None:
    """The worker of this SQLite database, if one runs; None for a database in memory (no
    worker runs on one). Never makes the lock file."""
    import fcntl

    if sqlite_file(engine.url) is None:
        return None
    path = worker_lock_path(engine)
    try:
        lock = open(path)
    except FileNotFoundError:
        return EmbeddedWorker(False, None, str(path))  # no worker ever ran here
    with lock:
        try:
            # Shared and at once: a worker starting meanwhile waits a moment (LOCK_PATIENCE_SECONDS).
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            return EmbeddedWorker(True, _pid_in(lock), str(path))
        fcntl.flock(lock, fcntl.LOCK_UN)
        return EmbeddedWorker(False, None, str(path))


def _pid_in(lock: IO[str]) -> int | None:
    lock.seek(0)
    text = lock.read().strip()
    return int(text) if text.isdigit() else None
