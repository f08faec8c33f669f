"""The gateway's rate cap shared by every process and machine, through PostgreSQL.

A gateway caps the calls of the whole merchant account (Stripe: 100 writes a second), whichever
process makes them; workers on several machines must share one cap, and the database is what
they all share already. One row, `gateway_rate_cap` (migration 0013), holds the next free call
slot, an instant on PostgreSQL's clock, the one clock of every machine. A process takes slots
in one atomic statement: the next free slot, or now if it has passed (an idle cap saves up no
burst), then the next free slot moves 1/rate further per slot taken. Slots granted are therefore
at least 1/rate apart, whoever took them: no second of PostgreSQL's clock holds more than `rate`
of them. The process sleeps until its slot, with no transaction and no connection held, and calls.

A process waits for its slot's instant on PostgreSQL's clock, read through its own: each answer
says when the database gave it, and the answer with the shortest round trip so far fixes the
offset between the two clocks, as if that answer had come back at once: a slot is then never
read as earlier than it is, at most later by that answer's way back (Cristian's midpoint is
half a round trip off either way, and early calls crowd the slots of other processes: a process
starting, its first statements slow on its side, sent calls ahead of their slots). So the
answer's way back, however long it took this time, does not move the call: with a relative wait
("in 8 ms") a slow answer would push its call onto the next ones (four workers at 100 a second
on a loaded machine put 112 calls in one second so, bench/scaleout.py --cap 100).

What is left to the margin between `rate` and the gateway's cap is lateness: a call leaves a
little after its slot (the thread's wake-up, the answer's way back for a slot granted "now"). If
that delay varies by up to J seconds, a second can hold `rate * (1 + J) + 1` calls. A thread
that wakes up more than TOO_LATE_SECONDS after its slot (a busy machine) drops it and waits for
another, so J is that (20 ms) plus the moment from the wake-up to the call: the default 90 a
second under Stripe's 100 leaves 0.1 s.

Nothing is released: a slot is only time. A process killed after taking slots leaves them unused,
which costs the others at most `group` slots of throughput. The table is UNLOGGED (no WAL flush
per grant, not replicated): a crash of the server or a failover empties it, and the first grant
after it writes the row again from now, so slots granted ahead just before a crash may be granted
twice, once (at most a group's worth per process).

SQLite has one worker per database file: there, the payment batches keep the in-process token
bucket (`renewly.payments.rate_limit`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Engine, text

# How far ahead a process takes slots at once: a group lasts this long at the cap's rate, or twice
# the statement's last round trip if that is longer (a database far away). At Stripe's 100 a
# second that is one slot per statement; at 2,000 a second, 20.
GROUP_SECONDS = 0.01
MOST_IN_GROUP = 100
# A slot whose moment passed longer ago than this is dropped, not used: a thread woken that late
# would call among the next slots, which others hold; and the rest of a group taken before an
# idle moment would go out all at once.
TOO_LATE_SECONDS = 0.02

# One statement, atomic (the row is locked from the update to the commit, autocommit), that
# writes the row when it is not there (a new database, or emptied by a crash: it is UNLOGGED).
# clock_timestamp() in SET is read once the row lock is held; the answer gives the first slot taken
# and the moment of the answer, both on the database's clock (seconds since the epoch).
TAKE_SLOTS = text("""
    INSERT INTO gateway_rate_cap AS cap (id, next_slot)
    VALUES (1, clock_timestamp() + make_interval(secs => :span))
    ON CONFLICT (id) DO UPDATE
        SET next_slot = greatest(cap.next_slot, clock_timestamp()) + make_interval(secs => :span)
    RETURNING extract(epoch FROM cap.next_slot - make_interval(secs => :span))::float8 AS first_slot,
              extract(epoch FROM clock_timestamp())::float8 AS answered
""")
# The offset of the shortest round trip is kept; after this long without a shorter one, the next
# answer's replaces it, so that the two clocks' drift (or a step of either) is followed.
OFFSET_KEPT_SECONDS = 60.0


def slots_per_statement(rate: float, round_trip: float = 0.0) -> int:
    """How many slots a process takes in one statement at this rate: one at a gateway's usual
    caps, more where one statement per call would cost the database too much, or where a round
    trip to the database (`round_trip` seconds) lasts longer than the slots a statement takes:
    the next group comes while the last one is used, so a group outlasts its round trip."""
    return max(1, min(MOST_IN_GROUP, math.floor(rate * max(GROUP_SECONDS, 2 * round_trip))))


def slot_deadlines(received_at: float, first_slot: float, spacing: float, count: int) -> list[float]:
    """The moments on this process's monotonic clock when each of `count` slots taken at once
    begins: the first at `first_slot` (the database's slot, read on this clock), the others
    `spacing` apart. A slot whose moment had passed by more than TOO_LATE_SECONDS when the answer
    came (`received_at`: a slow answer, a process starting) is dropped: a run of them would go out
    at once, all together (four hosts starting at once put 108 calls in one second so at a rate of
    96, bench/scaleout.py --cap 100 --rate-limit 96). If every one has passed, the last is used
    from the answer on, a little late, so that calls still go out, one a statement."""
    slots = [first_slot + n * spacing for n in range(count)]
    return [slot for slot in slots if slot >= received_at - TOO_LATE_SECONDS] or [received_at]


class DatabaseClock:
    """PostgreSQL's clock read on this process's monotonic clock: the offset between the two,
    from the answer whose round trip was the shortest, taken as received the moment it was given:
    a database instant is read on this clock never early, late by at most that answer's way back."""

    def __init__(self) -> None:
        self.offset: float | None = None  # the database's seconds minus this process's
        self.round_trip = math.inf
        self._measured_at = -math.inf

    def observe(self, asked: float, answered: float, received: float) -> None:
        """An answer given at `answered` (database clock) to a question asked at `asked` and
        answered at `received` (this process's clock)."""
        round_trip = received - asked
        if round_trip <= self.round_trip or received - self._measured_at > OFFSET_KEPT_SECONDS:
            self.offset = answered - received
            self.round_trip = round_trip
            self._measured_at = received

    def here(self, instant: float) -> float:
        """A database instant on this process's clock."""
        assert self.offset is not None, "no answer observed yet"
        return instant - self.offset


class SharedRateCap:
    """At most `rate` gateway calls a second, counted together with every other process that
    takes slots from the same database. Threads of one process take turns: one waits for its
    slot, the others for the lock, as in the in-process bucket. The process takes the next group
    of slots while it waits for the last one of the group before: a run of calls goes on with no
    gap between groups, and it leaves at most one group unused when it stops.

    `slots_at_once`: the group one statement takes; `slots_per_statement` (from the rate and the
    last round trip) unless told (bench/rate_cap.py measures one slot per statement)."""

    def __init__(self, engine: Engine, rate: float, *, slots_at_once: int | None = None,
                 prepare: Callable[[], object] | None = None) -> None:
        self.rate = rate
        # Called once, before the first slot is taken (the gateway's connection): done inside the
        # first calls instead, it held every call that had its slot meanwhile, and they left together.
        self._prepare = prepare
        self._engine = engine
        self._spacing = 1.0 / rate
        self._slots_at_once = slots_at_once
        self._round_trip = 0.0
        self._database_clock = DatabaseClock()
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._prepare is not None:
                self._prepare()
                self._prepare = None
            while True:
                if not self._slots:
                    self._slots.extend(self._take_slots())
                slot = self._slots.popleft()
                if not self._slots:
                    # The next group, taken while this slot is awaited: it follows this one at
                    # once, instead of starting a round trip late once this one is used.
                    self._slots.extend(self._take_slots())
                wait = slot - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if time.monotonic() - slot <= TOO_LATE_SECONDS:
                    return

    def _take_slots(self) -> list[float]:
        # Autocommit: the row is locked for the statement only, and no transaction stays open
        # while the caller sleeps; the connection goes back to the pool before that.
        group = self._slots_at_once or slots_per_statement(self.rate, self._round_trip)
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Timed from the statement, not from the checkout: a new connection's handshake (every
            # process's first answer) or a ping after an idle moment would make the round trip
            # look long on one side only, and the clocks' offset wrong by half of it; calls then
            # left early by as much, into the slots of others (four hosts starting at once put 104
            # calls in a second at a rate of 96, bench/scaleout.py --cap 100 --rate-limit 96).
            asked = time.monotonic()
            first_slot, answered = conn.execute(TAKE_SLOTS, {"span": group * self._spacing}).one()
            received = time.monotonic()
        self._round_trip = received - asked
        self._database_clock.observe(asked, answered, received)
        return slot_deadlines(received, self._database_clock.here(first_slot), self._spacing, group)
