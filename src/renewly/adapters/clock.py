"""Clocks: the only place Renewly reads the time.

The system clock is the wall clock. The test clock, like Stripe's, is a persisted instant that
only moves when told to (`renewly clock advance`), so that months of billing run in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from typing import Protocol

from sqlalchemy import Engine, select, text

from renewly.adapters.db.bulk import insert_ignoring_conflicts
from renewly.adapters.db.engine import reading, sqlite_file
from renewly.adapters.db.tables import test_clock

CLOCK_MOVES = 0x52434C4B  # PostgreSQL's advisory lock of clock moves ("RCLK")
# The test clock stops a century short of Python's last day (9999-12-31): batches compute dates
# ahead of it (a yearly renewal, retention's months, a reactivation window) that must still exist.
LATEST_TEST_CLOCK = datetime(9900, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def wall_clock() -> datetime:
    """The machine's time, whatever clock billing runs on: for leases over work in hand, which
    are about live processes, not billing time."""
    return datetime.now(UTC)


class PersistedTestClock:
    """A frozen instant stored in the database; it starts at today's midnight (UTC) when first read."""

    def __init__(self, engine: Engine, start: datetime | None = None) -> None:
        self._engine = engine
        self._start = start

    def peek(self) -> datetime | None:
        """The stored instant, or None while the clock has not started."""
        # `reading`: no write lock on SQLite (the clock is often read while the same process holds
        # a write transaction), one round trip on PostgreSQL (autocommit: no BEGIN, no ROLLBACK).
        # Batches read it often (a charge at the simulated gateway twice), and workers share it.
        with reading(self._engine) as conn:
            return conn.execute(select(test_clock.c.now)).scalar_one_or_none()

    def now(self) -> datetime:
        stored = self.peek()
        if stored is not None:
            return stored
        start = self._start or datetime.combine(SystemClock().now().date(), time.min, tzinfo=UTC)
        with self._engine.begin() as conn:
            # Processes reading it first at once: the first one's start stands.
            conn.execute(insert_ignoring_conflicts(conn)(test_clock).values(id=1, now=start)
                         .on_conflict_do_nothing(index_elements=["id"]))
        started = self.peek()
        if started is None:
            raise RuntimeError("the test clock's row is missing right after it was started")
        return started

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the test clock needs an aware datetime")
        if instant > LATEST_TEST_CLOCK:
            raise ValueError(f"the test clock stops at {LATEST_TEST_CLOCK.isoformat()}")
        with self._engine.begin() as conn:
            conn.execute(insert_ignoring_conflicts(conn)(test_clock).values(id=1, now=instant)
                         .on_conflict_do_update(index_elements=["id"], set_={"now": instant}))

    @contextmanager
    def turn(self) -> Iterator[None]:
        """One move of the clock at a time, across processes, each from where the one before it
        left the clock: an advance runs a tick's batches in many transactions, and one advance
        must not read the clock while another is on its way. PostgreSQL: a session advisory lock.
        SQLite, whose BEGIN IMMEDIATE serialises one transaction and not an advance's many: an
        exclusive lock on a file beside the database, `<database>-clock-lock`, made on first use
        and kept. The system releases either if the process dies."""
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CLOCK_MOVES})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CLOCK_MOVES})
                    conn.commit()
            return
        database = sqlite_file(self._engine.url)
        if database is None:  # a database in memory, of one connection: no other process
            yield
            return
        import fcntl  # POSIX file locks, released with the file

        with open(f"{database}-clock-lock", "a") as lock:  # "a": never truncates a file already there
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
