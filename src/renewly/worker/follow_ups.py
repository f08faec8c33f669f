"""Follow-up work queued in the transaction that makes it due (PostgreSQL): the `FollowUps` port.

A card update writes its retry requests (R7.1) and, in the same transaction, a `follow_up` job
for the payment batch's next tick (renewly/worker/queue.py): the job commits with the card or
rolls back with it. One job per instant: a second one for the same tick is refused by its
queueing lock, inside a savepoint so that the caller's transaction goes on.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from renewly.ports import Ports

if TYPE_CHECKING:
    import procrastinate


class QueuedFollowUps:
    # Bootstrap makes one for every command on PostgreSQL: nothing heavy is imported until a
    # job is written (the scheduler, procrastinate).
    def __init__(self, app: Ports) -> None:
        self._app = app

    @cached_property
    def _queue(self) -> procrastinate.App:
        # Never opened: a job is written on the caller's connection, never through a pool.
        from renewly.worker.queue import job_queue
        return job_queue(self._app)

    def work_due(self, conn: Connection, batch: str, due_at: datetime) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        from renewly import scheduler
        from renewly.worker.queue import follow_up_options

        at = scheduler.next_tick_of(conn, self._app, batch, due_at)
        driver: Any = conn.connection.driver_connection  # psycopg's, in the caller's transaction
        try:
            with conn.begin_nested():
                self._queue.tasks["follow_up"].configure(connection=driver, **follow_up_options(self._app, at)).defer()
        except AlreadyEnqueued:
            pass  # a follow-up for that tick waits already
