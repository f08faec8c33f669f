"""`renewly worker status`: where each batch stands (its last run, its next tick, how late that
tick is) on either engine; on SQLite whether a worker runs; on PostgreSQL the queue's own section
(queued and failed jobs per task, live workers), which the queue module gives."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from renewly.adapters.db.engine import sqlite_file
from renewly.ports import Ports
from renewly.scheduler import BatchSchedule, schedule
from renewly.worker.embedded import EmbeddedWorker, embedded_worker


class QueueSection(Protocol):
    """What `renewly.worker.queue.queue_status(app)` answers on PostgreSQL: the queued and failed
    jobs of each task and the live workers, as JSON and as lines of at most 80 columns."""

    def as_json(self) -> dict[str, Any]: ...

    def describe(self) -> list[str]: ...


@dataclass(frozen=True)
class WorkerStatus:
    now: datetime
    clock: str  # "test" or "system"
    engine: str  # "sqlite" or "postgresql"
    batches: list[BatchSchedule]
    embedded: EmbeddedWorker | None  # SQLite (a file); None on PostgreSQL
    # PostgreSQL: the queue's section; None on SQLite, or while renewly.worker.queue is not built.
    queue: QueueSection | None


def worker_status(app: Ports) -> WorkerStatus:
    now = app.clock.now()
    engine = app.engine.dialect.name
    embedded = queue = None
    if engine == "sqlite":
        # A database in memory is one process's: no worker runs on it.
        embedded = embedded_worker(app) if sqlite_file(app.engine.url) is not None else None
    else:
        queue = queue_section(app)
    return WorkerStatus(now, "test" if app.test_clock else "system", engine, schedule(app, now), embedded, queue)


def queue_section(app: Ports) -> QueueSection | None:
    """The hook of PostgreSQL's queue: `renewly.worker.queue.queue_status(app)`; None while that
    module is not there (its section is then said to be missing, never made up)."""
    try:
        queue = importlib.import_module("renewly.worker.queue")
    except ModuleNotFoundError as error:
        if error.name != "renewly.worker.queue":
            raise  # the module is there but something it needs is not: not ours to hide
        return None
    status: QueueSection = queue.queue_status(app)
    return status
