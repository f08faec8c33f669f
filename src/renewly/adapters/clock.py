"""Clocks: the only place Renewly reads the time.

The system clock is the wall clock. The test clock, like Stripe's, is a persisted instant that
only moves when told to (`renewly clock advance`), so that months of billing run in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Protocol

from sqlalchemy import Engine, select

from renewly.adapters.db.tables import test_clock


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class PersistedTestClock:
    """A frozen instant stored in the database; it starts at today's midnight (UTC) when first read."""

    def __init__(self, engine: Engine, start: datetime | None = None) -> None:
        self._engine = engine
        self._start = start

    def peek(self) -> datetime | None:
        """The stored instant, or None while the clock has not started."""
        # Read-only: the clock is often read while the same process holds a write transaction.
        with self._engine.connect().execution_options(read_only=True) as conn:
            return conn.execute(select(test_clock.c.now)).scalar_one_or_none()

    def now(self) -> datetime:
        stored = self.peek()
        if stored is not None:
            return stored
        start = self._start or datetime.combine(SystemClock().now().date(), time.min, tzinfo=UTC)
        self.set(start)
        return start

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the test clock needs an aware datetime")
        with self._engine.begin() as conn:
            updated = conn.execute(test_clock.update().values(now=instant)).rowcount
            if not updated:
                conn.execute(test_clock.insert().values(id=1, now=instant))
